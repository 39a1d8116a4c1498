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
