package io.sparkrouter.listener;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Batches the router could not take yet, one JSON file each, named so that sorting by name is sorting by
 * creation. Bounded in bytes: a batch that would pass the bound is refused (the caller logs what it drops).
 * Several Spark applications may share a directory: each replays what it finds; ingest is idempotent.
 */
final class Spool {
    private final Path dir;
    private final long maxBytes;
    private final String owner;
    private final AtomicLong sequence = new AtomicLong();

    Spool(Path dir, long maxBytes, String owner) throws IOException {
        this.dir = dir;
        this.maxBytes = maxBytes;
        this.owner = owner.replaceAll("[^A-Za-z0-9_.-]", "_");
        Files.createDirectories(dir);
    }

    Path dir() {
        return dir;
    }

    /** Write a batch; false if the spool is full (the batch is not written). */
    synchronized boolean add(byte[] batch) throws IOException {
        if (bytes() + batch.length > maxBytes) {
            return false;
        }
        String name = String.format("%013d-%08d-%s.json", System.currentTimeMillis(), sequence.incrementAndGet(), owner);
        Path temporary = dir.resolve("." + name + ".tmp");
        Files.write(temporary, batch);
        Files.move(temporary, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
        return true;
    }

    /** Spooled batches, oldest first. */
    List<Path> files() throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, "*.json")) {
            for (Path file : stream) {
                files.add(file);
            }
        }
        Collections.sort(files);
        return files;
    }

    /** The batch in a file, or null if another process took it meanwhile. */
    byte[] read(Path file) throws IOException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException gone) {
            return null;
        }
    }

    void remove(Path file) throws IOException {
        Files.deleteIfExists(file);
    }

    long bytes() throws IOException {
        long total = 0;
        for (Path file : files()) {
            try {
                total += Files.size(file);
            } catch (NoSuchFileException gone) {
                // replayed by another process
            }
        }
        return total;
    }
}
