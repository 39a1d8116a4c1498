package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batches the router has not stored yet, one JSON file each, named so that sorting by name is sorting by
 * creation: {@code <epoch ms>-<sequence>-<process>.json}. How often the router refused a batch, and with which
 * HTTP status, is part of its name ({@code ….refused-500-x2.json}), so that it survives restarts. Batches the
 * router refused too often are moved to {@code dead-letter/}, kept for a person to look at until they are older
 * than the retention ({@link #pruneDeadLetters}).
 *
 * <p>Bounded in bytes, dead letters included: a new batch that would pass the bound takes the place of the oldest
 * dead letters (deleted, logged and counted in {@link #deadLetterRecordsDropped}); if even that is not enough, it
 * is refused (the caller logs and counts what it drops). Several Spark applications may share a directory: each
 * replays what it finds; ingest is idempotent.
 */
final class Spool {
    static final String DEAD_LETTER = "dead-letter";
    private static final Pattern REFUSED = Pattern.compile("^(.*)\\.refused-(\\d+)-x(\\d+)\\.json$");
    private static final Logger LOG = LoggerFactory.getLogger(Spool.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The router refused a batch with this HTTP status, so many times in a row. */
    record Refusals(int status, int times) {
        static final Refusals NONE = new Refusals(0, 0);

        /** After one more refusal: a different status starts the count again. */
        Refusals plus(int newStatus) {
            return new Refusals(newStatus, newStatus == status ? times + 1 : 1);
        }
    }

    private final Path dir;
    private final Path deadLetterDir;
    private final long maxBytes;
    private final AtomicLong sequence = new AtomicLong();
    // Tells apart files of processes sharing the directory that spool in the same millisecond.
    private final String process = UUID.randomUUID().toString().substring(0, 8);
    /** Dead letters deleted to make room for new batches, and the stage records they held, since start. */
    final AtomicLong deadLettersDropped = new AtomicLong();
    final AtomicLong deadLetterRecordsDropped = new AtomicLong();
    private final RateLimitedLog roomLog = new RateLimitedLog(LOG, 30_000);

    Spool(Path dir, long maxBytes) throws IOException {
        this.dir = dir;
        this.deadLetterDir = dir.resolve(DEAD_LETTER);
        this.maxBytes = maxBytes;
        Files.createDirectories(dir);
    }

    Path dir() {
        return dir;
    }

    Path deadLetterDir() {
        return deadLetterDir;
    }

    /** Write a batch, deleting the oldest dead letters if it needs their room; null if it does not fit anyway. */
    synchronized Path add(byte[] batch) throws IOException {
        long waiting = bytes(files());
        if (waiting + batch.length > maxBytes) {
            return null;  // not even without the dead letters: keep them
        }
        long over = waiting + bytes(deadLetters()) + batch.length - maxBytes;
        for (Path dead : deadLetters()) {
            if (over <= 0) {
                break;
            }
            over -= dropDeadLetter(dead);
        }
        String name = String.format("%013d-%08d-%s.json",
                System.currentTimeMillis(), sequence.incrementAndGet(), process);
        Path temporary = dir.resolve("." + name + ".tmp");
        Files.write(temporary, batch);
        return Files.move(temporary, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
    }

    /** Spooled batches, oldest first (dead letters are not among them). */
    List<Path> files() throws IOException {
        return jsonFiles(dir);
    }

    List<Path> deadLetters() throws IOException {
        return Files.isDirectory(deadLetterDir) ? jsonFiles(deadLetterDir) : List.of();
    }

    private static List<Path> jsonFiles(Path directory) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(directory, "*.json")) {
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

    static Refusals refusalsOf(Path file) {
        Matcher matcher = REFUSED.matcher(file.getFileName().toString());
        return matcher.matches()
                ? new Refusals(Integer.parseInt(matcher.group(2)), Integer.parseInt(matcher.group(3)))
                : Refusals.NONE;
    }

    /** Note the refusals in the file's name; its modification time becomes the time of the last refusal. */
    Path markRefused(Path file, Refusals refusals) throws IOException {
        Path renamed = moveIfThere(file, dir.resolve(refusedName(file, refusals)));
        if (renamed != null) {
            Files.setLastModifiedTime(renamed, FileTime.fromMillis(System.currentTimeMillis()));
        }
        return renamed;
    }

    /**
     * Out of the replay, its name saying how it was refused; null if another process took it meanwhile. Its
     * modification time becomes now: the retention counts from here.
     */
    Path toDeadLetter(Path file, Refusals refusals) throws IOException {
        Files.createDirectories(deadLetterDir);
        Path dead = moveIfThere(file, deadLetterDir.resolve(refusedName(file, refusals)));
        if (dead != null) {
            Files.setLastModifiedTime(dead, FileTime.fromMillis(System.currentTimeMillis()));
        }
        return dead;
    }

    /** Delete a dead letter for a new batch's room: its size (0 if another process took it), logged and counted. */
    private long dropDeadLetter(Path dead) throws IOException {
        byte[] batch = read(dead);
        if (batch == null || !Files.deleteIfExists(dead)) {
            return 0;
        }
        int records;
        try {
            records = JSON.readTree(batch).path("stages").size();
        } catch (IOException unreadable) {
            records = 0;
        }
        long files = deadLettersDropped.incrementAndGet();
        deadLetterRecordsDropped.addAndGet(records);
        roomLog.warn("spark-router listener: spool {} is full ({} bytes max, dead letters included): deleted the "
                + "oldest dead letter {} ({} stage record(s)) to make room for new batches ({} dead letter(s) deleted "
                + "this way since start)", dir, maxBytes, dead.getFileName(), records, files);
        return batch.length;
    }

    /**
     * Delete the dead letters older than retentionMs (since they went to dead-letter/); none if it is 0 or less.
     * Returns how many.
     */
    int pruneDeadLetters(long retentionMs) throws IOException {
        if (retentionMs <= 0) {
            return 0;
        }
        long before = System.currentTimeMillis() - retentionMs;
        int deleted = 0;
        for (Path dead : deadLetters()) {
            try {
                if (Files.getLastModifiedTime(dead).toMillis() < before && Files.deleteIfExists(dead)) {
                    deleted++;
                }
            } catch (NoSuchFileException gone) {
                // deleted by another process sharing the directory
            }
        }
        if (deleted > 0) {
            LOG.info("spark-router listener: deleted {} dead letter(s) from {}, kept {} ms "
                    + "(spark.router.listener.deadLetterRetentionMs)", deleted, deadLetterDir, retentionMs);
        }
        return deleted;
    }

    private static Path moveIfThere(Path from, Path to) throws IOException {
        try {
            return Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (NoSuchFileException gone) {
            return null;
        }
    }

    private static String refusedName(Path file, Refusals refusals) {
        String name = file.getFileName().toString();
        Matcher matcher = REFUSED.matcher(name);
        String stem = matcher.matches() ? matcher.group(1) : name.substring(0, name.length() - ".json".length());
        return String.format("%s.refused-%d-x%d.json", stem, refusals.status(), refusals.times());
    }

    /** What the spool holds on disk: the batches waiting and the dead letters. */
    long bytes() throws IOException {
        return bytes(files()) + bytes(deadLetters());
    }

    private static long bytes(List<Path> files) throws IOException {
        long total = 0;
        for (Path file : files) {
            try {
                total += Files.size(file);
            } catch (NoSuchFileException gone) {
                // replayed by another process
            }
        }
        return total;
    }
}
