package io.sparkrouter.listener;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;

/** The spool's bound holds the dead letters too, and dead letters are kept for their retention only. */
public class SpoolTest {
    private final Path dir = Check.tempDir();

    /** A batch of `records` stage records, padded to exactly `bytes` bytes. */
    private static byte[] batch(int records, int bytes) {
        StringBuilder stages = new StringBuilder();
        for (int i = 0; i < records; i++) {
            stages.append(i == 0 ? "" : ",").append("{\"stage_id\":").append(i).append('}');
        }
        String start = "{\"stages\":[" + stages + "],\"pad\":\"";
        String end = "\"}";
        return (start + "x".repeat(bytes - start.length() - end.length()) + end).getBytes(StandardCharsets.UTF_8);
    }

    private static Path deadLetter(Spool spool, byte[] batch) throws Exception {
        Path file = spool.add(batch);
        return spool.toDeadLetter(file, new Spool.Refusals(422, 5));
    }

    public void testDeadLettersCountTowardTheBoundAndMakeRoomForNewBatchesOldestFirst() throws Exception {
        Spool spool = new Spool(dir, 1000);
        Path oldest = deadLetter(spool, batch(3, 300));
        Path middle = deadLetter(spool, batch(2, 300));
        Path newest = deadLetter(spool, batch(1, 300));
        Check.equal(900L, spool.bytes(), "dead letters are part of the spool's size");

        Path added = spool.add(batch(4, 300));
        Check.isTrue(added != null, "a new batch is spooled");
        Check.equal(List.of(middle, newest), spool.deadLetters(), "the oldest dead letter made room");
        Check.equal(900L, spool.bytes(), "within the bound");
        Check.equal(1L, spool.deadLettersDropped.get(), "dead letters deleted for room");
        Check.equal(3L, spool.deadLetterRecordsDropped.get(), "their stage records, counted");
        Check.isTrue(!Files.exists(oldest), "deleted");

        Check.isTrue(spool.add(batch(1, 800)) == null, "a batch that does not fit beside the waiting ones");
        Check.equal(List.of(middle, newest), spool.deadLetters(), "dead letters are not deleted in vain");
        Check.isTrue(spool.add(batch(5, 690)) != null, "fits once both dead letters are gone");
        Check.equal(List.of(), spool.deadLetters(), "both deleted");
        Check.equal(990L, spool.bytes(), "within the bound");
        Check.equal(6L, spool.deadLetterRecordsDropped.get(), "3 + 2 + 1 records counted");
    }

    public void testDeadLettersOlderThanTheRetentionAreDeleted() throws Exception {
        Spool spool = new Spool(dir, 1 << 20);
        Path old = deadLetter(spool, batch(1, 100));
        Files.setLastModifiedTime(old, FileTime.fromMillis(System.currentTimeMillis() - 120_000));
        Path spooledLongAgo = spool.add(batch(1, 100));
        Files.setLastModifiedTime(spooledLongAgo, FileTime.fromMillis(System.currentTimeMillis() - 120_000));
        Path recent = spool.toDeadLetter(spooledLongAgo, new Spool.Refusals(500, 5));  // given up on just now

        Check.equal(0, spool.pruneDeadLetters(0), "a retention of 0 keeps them");
        Check.equal(1, spool.pruneDeadLetters(60_000), "deleted");
        Check.equal(List.of(recent), spool.deadLetters(), "the retention counts from the move to dead-letter/");
        Check.equal(0L, spool.deadLetterRecordsDropped.get(), "not a loss for lack of room");
    }
}
