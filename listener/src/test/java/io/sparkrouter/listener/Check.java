package io.sparkrouter.listener;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Assertions and small helpers for the tests. */
final class Check {
    private Check() {
    }

    static void equal(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    static void isTrue(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    /** Polls the condition every 10 ms; fails, saying what was awaited, after timeoutMs. */
    static void waitUntil(BooleanSupplier condition, long timeoutMs, String what) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what);
            }
            sleep(10);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException interrupted) {
            throw new AssertionError("interrupted");
        }
    }

    static Path tempDir() {
        try {
            Path dir = Files.createTempDirectory("spark-router-listener-test");
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException error) {
            throw new UncheckedIOException(error);
        }
    }

    /** The JSON field names in the example of docs/ingest-protocol.md that follows the given heading. */
    static Set<String> documentedFields(String heading) throws IOException {
        Path doc = Paths.get(System.getProperty("sparkrouter.repo", ".."), "docs", "ingest-protocol.md");
        String text = Files.readString(doc);
        int section = text.indexOf(heading);
        isTrue(section >= 0, "no section " + heading + " in " + doc);
        int start = text.indexOf("```json", section);
        String example = text.substring(start, text.indexOf("```", start + 7));
        Set<String> fields = new TreeSet<>();
        Matcher field = Pattern.compile("\"([a-z_]+)\"\\s*:").matcher(example);
        while (field.find()) {
            fields.add(field.group(1));
        }
        return fields;
    }
}
