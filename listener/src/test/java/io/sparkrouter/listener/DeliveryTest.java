package io.sparkrouter.listener;

import java.io.IOException;
import java.net.BindException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkConf;

/** What the listener does with each answer of the router (docs/ingest-protocol.md), against a router in process. */
public class DeliveryTest implements AutoCloseable {
    private static final int POISON = 666;  // a stage id the fake router refuses batches of

    private final Path spoolDir = Check.tempDir();
    private final Delivery.Identity identity = new Delivery.Identity();
    private final List<Delivery> started = new ArrayList<>();

    public DeliveryTest() {
        identity.serverId = "connect-test";
        identity.sparkAppId = "local-test";
    }

    /** Small batches, quick retries: each test takes about a second. */
    private SparkConf conf(String url) {
        return new SparkConf(false)
                .set("spark.router.listener.url", url)
                .set("spark.router.listener.spoolDir", spoolDir.toString())
                .set("spark.router.listener.flushIntervalMs", "20")
                .set("spark.router.listener.retryBackoffMs", "20")
                .set("spark.router.listener.maxBackoffMs", "100")
                .set("spark.router.listener.maxAttempts", "3")
                .set("spark.router.listener.shutdownTimeoutMs", "500");
    }

    private Delivery start(SparkConf conf) throws IOException {
        Delivery delivery = new Delivery(new ListenerConfig(conf, null), identity);
        delivery.start();
        started.add(delivery);
        return delivery;
    }

    /** After each test: stop the sender threads it started. */
    @Override
    public void close() {
        started.forEach(Delivery::close);
    }

    private static int spooledRecords(Spool spool) throws IOException {
        int records = 0;
        for (Path file : spool.files()) {
            records += new com.fasterxml.jackson.databind.ObjectMapper().readTree(file.toFile()).get("stages").size();
        }
        return records;
    }

    public void testRefusedTokenKeepsTheBatchCountsItAndPicksUpARotatedTokenFile() throws Exception {
        Path tokenFile = spoolDir.resolve("token");
        Files.writeString(tokenFile, "old-token\n");
        try (FakeRouter router = new FakeRouter()) {
            router.answer(request -> "Bearer new-token".equals(request.authorization()) ? 200 : 401);
            Delivery delivery = start(conf(router.url()).set("spark.router.listener.tokenFile", tokenFile.toString()));
            delivery.offer(SparkEvents.record(1));
            Check.waitUntil(() -> delivery.authFailures() >= 3, 5_000, "three refusals of the token");
            Check.equal(1, delivery.spool().files().size(), "the batch is kept in the spool");
            Check.isTrue(!delivery.spool().files().get(0).toString().contains("refused"), "not counted as a refusal");
            Check.equal(List.of(), delivery.spool().deadLetters(), "dead letters");

            Files.writeString(tokenFile, "new-token\n");  // the secret is rotated
            Check.waitUntil(() -> router.stored(1), 5_000, "the batch, sent with the new token");
            Check.waitUntil(() -> spoolEmpty(delivery), 5_000, "an empty spool");
            Check.equal(List.of(), delivery.spool().deadLetters(), "dead letters");
        }
    }

    public void testBatchRefusedWith500GoesToDeadLetterWhileLaterBatchesAreStored() throws Exception {
        refusedBatchGoesToDeadLetter(500);
    }

    public void testBatchRefusedWith422GoesToDeadLetterAfterMaxAttempts() throws Exception {
        refusedBatchGoesToDeadLetter(422);
    }

    private void refusedBatchGoesToDeadLetter(int status) throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            router.answer(request -> request.stageIds().contains(POISON) ? status : 200);
            // Slower retries of the refused batch, so that the later batch is seen to pass it.
            Delivery delivery = start(conf(router.url()).set("spark.router.listener.retryBackoffMs", "150"));
            delivery.offer(SparkEvents.record(POISON));
            Check.waitUntil(() -> router.answered(POISON, status) >= 1, 5_000, "the first refusal");
            delivery.offer(SparkEvents.record(1));
            Check.waitUntil(() -> router.stored(1), 5_000, "the later batch stored");
            Check.waitUntil(() -> deadLetters(delivery) == 1, 5_000, "the refused batch in dead-letter/");

            Check.equal(3L, router.answered(POISON, status), "refusals before dead-letter (maxAttempts)");
            Check.isTrue(router.firstStored(1) < router.lastAnswered(POISON, status),
                    "the later batch was stored before the refused one was given up: the queue moved on");
            Path dead = delivery.spool().deadLetters().get(0);
            Check.isTrue(dead.getFileName().toString().endsWith(".refused-" + status + "-x3.json"), "name: " + dead);
            Check.isTrue(Files.readString(dead).contains("\"stage_id\":" + POISON), "the batch itself is kept");
            Check.waitUntil(() -> spoolFiles(delivery) == 0, 5_000, "nothing left to replay");
            Check.equal(1, new Heartbeat(new ListenerConfig(conf(router.url()), null), identity, delivery)
                    .snapshot().get("dead_letter_files"), "dead_letter_files in the heartbeat");
            Check.equal(0L, delivery.dropped(), "nothing dropped");
        }
    }

    public void testReplayGoesPastAFileThatKeepsFailing() throws Exception {
        Spool spool = new Spool(spoolDir, 1 << 20);
        Delivery encoder = new Delivery(new ListenerConfig(conf("http://unused"), null), identity);
        for (int stageId : new int[] {POISON, 1, 2}) {  // oldest first
            spool.add(encoder.encode(List.of(SparkEvents.record(stageId))));
        }
        try (FakeRouter router = new FakeRouter()) {
            router.answer(request -> request.stageIds().contains(POISON) ? 500 : 200);
            Delivery delivery = start(conf(router.url()).set("spark.router.listener.retryBackoffMs", "300"));
            Check.waitUntil(() -> router.stored(1) && router.stored(2), 5_000, "the files behind the refused one");
            Check.waitUntil(() -> spoolFiles(delivery) == 1, 5_000, "only the refused file left in the spool");
            Check.equal(1L, router.answered(POISON, 500), "the refused file was tried once so far");
            Check.isTrue(router.firstStored(1) < router.firstStored(2), "order kept otherwise");
        }
    }

    public void testRouterDownKeepsEverythingSpooledWithoutDeadLetters() throws Exception {
        int port;
        try (FakeRouter gone = new FakeRouter()) {
            port = gone.port();  // nothing listens there once it is closed: connections are refused
        }
        Delivery delivery = start(conf("http://127.0.0.1:" + port));
        for (int stageId = 1; stageId <= 3; stageId++) {
            delivery.offer(SparkEvents.record(stageId));
            Check.sleep(60);  // separate batches
        }
        Check.sleep(500);  // many retry rounds, with 20-100 ms backoff
        Check.equal(3, spooledRecords(delivery.spool()), "records kept in the spool");
        Check.equal(List.of(), delivery.spool().deadLetters(), "dead letters");
        Check.isTrue(delivery.spool().files().stream().noneMatch(file -> file.toString().contains("refused")),
                "an absent router is no refusal");
        FakeRouter router;
        try {
            router = new FakeRouter(port);
        } catch (BindException taken) {
            return;  // another process took the port meanwhile: the rest cannot be shown here
        }
        try (router) {
            Check.waitUntil(() -> router.stored(1) && router.stored(2) && router.stored(3), 5_000, "all three stored");
            Check.waitUntil(() -> spoolEmpty(delivery), 5_000, "an empty spool");
            Check.equal(0L, delivery.dropped(), "nothing dropped");
        }
    }

    public void testHttpRetriesOnceOnAConnectionTheRouterClosed() throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            Http http = new Http(router.url(), new IngestToken(null, null, "t"));
            Check.equal(200, http.post("/api/v1/ingest/heartbeat", "{}".getBytes()).statusCode(), "first");
            router.dropConnections(1);
            Check.equal(200, http.post("/api/v1/ingest/heartbeat", "{}".getBytes()).statusCode(),
                    "answered on a fresh connection");
            Check.equal(2, router.heartbeats().size(), "heartbeats received");
            Check.equal("Bearer t", router.heartbeats().get(1).authorization(), "token sent");
        }
    }

    public void testRefusalsAreCountedInTheFileNameAcrossRestarts() throws Exception {
        Spool spool = new Spool(spoolDir, 1 << 20);
        Path file = spool.add("{}".getBytes());
        Check.equal(Spool.Refusals.NONE, Spool.refusalsOf(file), "a new batch");
        file = spool.markRefused(file, Spool.refusalsOf(file).plus(500));
        file = spool.markRefused(file, Spool.refusalsOf(file).plus(500));
        Path again = new Spool(spoolDir, 1 << 20).files().get(0);  // as a restarted listener finds it
        Check.equal(new Spool.Refusals(500, 2), Spool.refusalsOf(again), "refusals survive a restart");
        Check.equal(new Spool.Refusals(422, 1), Spool.refusalsOf(again).plus(422), "another status starts again");
    }

    // ---- A busy router (429, 502, 503, 504): the batch is kept, never counted towards dead-letter, and sent again
    // after a backoff, or when the answer's Retry-After says (at most maxBackoffMs).

    public void testBusyAnswersKeepTheBatchAndNeverCountTowardsDeadLetter() throws Exception {
        for (int status : new int[] {429, 502, 503, 504}) {
            try (FakeRouter router = new FakeRouter()) {
                // Twice maxAttempts busy answers, then stored.
                router.answer(request -> router.batchesWith(1).size() < 6 ? status : 200);
                Delivery delivery = start(conf(router.url()));
                delivery.offer(SparkEvents.record(1));
                Check.waitUntil(() -> router.stored(1), 10_000, "the batch stored after six " + status + "s");
                Check.equal(6L, router.answered(1, status), status + " answers");
                Check.equal(List.of(), delivery.spool().deadLetters(), "dead letters after " + status);
                Check.waitUntil(() -> spoolEmpty(delivery), 5_000, "an empty spool");
                Check.equal(0L, delivery.dropped(), "nothing dropped");
            }
        }
    }

    /** The time between the first answer to stage 1's batch and the next try. */
    private static long secondTryAfterMs(FakeRouter router) {
        List<FakeRouter.Request> tries = router.batchesWith(1);
        return tries.get(1).atMs() - tries.get(0).atMs();
    }

    private void busyOnceWithRetryAfter(FakeRouter router, String retryAfter, SparkConf conf) throws Exception {
        router.retryAfter(retryAfter);
        router.answer(request -> router.batchesWith(1).isEmpty() ? 503 : 200);
        Delivery delivery = start(conf);
        delivery.offer(SparkEvents.record(1));
        Check.waitUntil(() -> router.stored(1), 10_000, "the batch stored after the 503");
        Check.equal(List.of(), delivery.spool().deadLetters(), "dead letters");
    }

    public void testRetryAfterInSecondsIsHonoured() throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            busyOnceWithRetryAfter(router, "1", conf(router.url()).set("spark.router.listener.maxBackoffMs", "5000"));
            long waited = secondTryAfterMs(router);  // the backoff alone: 20 ms
            Check.isTrue(waited >= 950 && waited < 4000, "tried again after " + waited + " ms, asked for 1 s");
        }
    }

    public void testRetryAfterAsAnHttpDateIsHonoured() throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            String inTwoSeconds = java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME.format(
                    java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC).plusSeconds(2));  // to the second
            busyOnceWithRetryAfter(router, inTwoSeconds,
                    conf(router.url()).set("spark.router.listener.maxBackoffMs", "5000"));
            long waited = secondTryAfterMs(router);
            Check.isTrue(waited >= 950 && waited < 5000, "tried again after " + waited + " ms, asked for ~2 s");
        }
    }

    public void testRetryAfterIsCappedAtMaxBackoff() throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            busyOnceWithRetryAfter(router, "3600", conf(router.url()).set("spark.router.listener.maxBackoffMs", "300"));
            long waited = secondTryAfterMs(router);
            Check.isTrue(waited >= 250 && waited < 3000, "tried again after " + waited + " ms, capped at 300");
        }
    }

    // ---- Dead letters: inside the spool's bound, kept for their retention.

    /** A dead letter as an earlier listener left it: refused five times with 422, `records` stage records. */
    private Path oldDeadLetter(String name, int records, long ageMs) throws IOException {
        Path dir = Files.createDirectories(spoolDir.resolve("dead-letter"));
        Delivery encoder = new Delivery(new ListenerConfig(conf("http://unused"), null), identity);
        List<StageRecord> batch = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            batch.add(SparkEvents.record(900 + i));
        }
        Path file = Files.write(dir.resolve(name + ".refused-422-x5.json"), encoder.encode(batch));
        Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - ageMs));
        return file;
    }

    private static long onDisk(Path dir) throws IOException {
        try (var files = Files.walk(dir)) {
            return files.filter(file -> file.toString().endsWith(".json")).mapToLong(file -> file.toFile().length()).sum();
        }
    }

    public void testDeadLettersMakeRoomForNewBatchesWithinTheSpoolBoundAndAreCounted() throws Exception {
        Path first = oldDeadLetter("0000000000001-00000001-aaaaaaaa", 3, 0);
        Path second = oldDeadLetter("0000000000002-00000001-aaaaaaaa", 3, 0);
        long bound = onDisk(spoolDir) + 200;  // room for no batch beside the dead letters
        int port;
        try (FakeRouter gone = new FakeRouter()) {
            port = gone.port();  // the router is down: batches are spooled
        }
        Delivery delivery = start(conf("http://127.0.0.1:" + port)
                .set("spark.router.listener.spoolMaxBytes", Long.toString(bound)));
        long offered = System.nanoTime();
        delivery.offer(SparkEvents.record(1));
        Check.isTrue(System.nanoTime() - offered < 50_000_000L, "offering never waits");
        Check.waitUntil(() -> spoolFiles(delivery) == 1, 5_000, "the new batch spooled");
        Check.isTrue(!Files.exists(first) && Files.exists(second), "the oldest dead letter made room");
        Check.isTrue(onDisk(spoolDir) <= bound, "spool and dead letters within " + bound + ": " + onDisk(spoolDir));
        Check.equal(3L, delivery.dropped(), "the dead letter's records are counted as dropped");
        Check.equal(3L, new Heartbeat(new ListenerConfig(conf("http://unused"), null), identity, delivery)
                .snapshot().get("dropped_records"), "dropped_records in the heartbeat");
    }

    public void testDeadLettersOlderThanTheirRetentionAreDeleted() throws Exception {
        Path old = oldDeadLetter("0000000000001-00000001-aaaaaaaa", 1, 120_000);
        Path recent = oldDeadLetter("0000000000002-00000001-aaaaaaaa", 1, 1_000);
        try (FakeRouter router = new FakeRouter()) {
            start(conf(router.url()).set("spark.router.listener.deadLetterRetentionMs", "60000"));
            Check.waitUntil(() -> !Files.exists(old), 5_000, "the dead letter past its retention deleted");
            Check.isTrue(Files.exists(recent), "the recent one kept");
        }
    }

    private static boolean spoolEmpty(Delivery delivery) {
        return spoolFiles(delivery) == 0;
    }

    private static int spoolFiles(Delivery delivery) {
        try {
            return delivery.spool().files().size();
        } catch (IOException error) {
            return -1;
        }
    }

    private static int deadLetters(Delivery delivery) {
        try {
            return delivery.spool().deadLetters().size();
        } catch (IOException error) {
            return -1;
        }
    }
}
