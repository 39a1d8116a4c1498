package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gets stage records to the router without ever blocking Spark: the listener only offers records to a
 * bounded queue; one sender thread batches them and POSTs them. What the router cannot take now goes to the
 * spool and is replayed, oldest first, before anything newer is sent.
 */
final class Delivery {
    private static final Logger LOG = LoggerFactory.getLogger(Delivery.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_BACKOFF_MS = 30_000;
    private static final long POLL_SLICE_MS = 100;

    private final ListenerConfig config;
    private final Identity identity;
    private final Spool spool;
    private final BlockingQueue<Map<String, Object>> queue;
    private final HttpClient http;
    private final Thread sender;
    private volatile boolean stopping;
    private volatile boolean flushing;  // closing: send what there is now, wait for no more records
    // Records taken in but not yet sent, spooled or dropped: in the queue or in the sender's hands.
    private final AtomicInteger unsent = new AtomicInteger();
    private long retryAtMs;
    private long backoffMs = 1000;
    private boolean routerDownLogged;
    final AtomicLong dropped = new AtomicLong();
    final AtomicLong sentRecords = new AtomicLong();
    private final RateLimitedLog dropLog = new RateLimitedLog(LOG, 30_000);

    /** Who we are, as the router knows us; the Spark app id is known only once the application starts. */
    static final class Identity {
        volatile String serverId;
        volatile String sparkAppId;
    }

    Delivery(ListenerConfig config, Identity identity) throws IOException {
        this.config = config;
        this.identity = identity;
        this.spool = new Spool(config.spoolDir, config.spoolMaxBytes, "batch");
        this.queue = new ArrayBlockingQueue<>(config.queueCapacity);
        // HTTP/1.1: the JDK client otherwise tries an h2c upgrade that plain HTTP servers answer badly.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        this.sender = new Thread(this::sendLoop, "spark-router-listener-sender");
        this.sender.setDaemon(true);
    }

    void start() {
        sender.start();
    }

    /** Called on the listener bus: never blocks. */
    void offer(Map<String, Object> record) {
        unsent.incrementAndGet();
        if (!queue.offer(record)) {
            unsent.decrementAndGet();
            long count = dropped.incrementAndGet();
            dropLog.warn("spark-router listener: queue full ({} records): dropped stage {} ({} dropped so far); "
                    + "the router or the network is too slow", config.queueCapacity, record.get("stage_id"), count);
        }
    }

    int queueSize() {
        return queue.size();
    }

    Spool spool() {
        return spool;
    }

    HttpClient http() {
        return http;
    }

    private void sendLoop() {
        while (!stopping) {
            try {
                List<Map<String, Object>> batch = nextBatch();
                replaySpool();
                if (!batch.isEmpty()) {
                    try {
                        deliver(encode(batch), batch.size());  // interrupted (shutdown): it lands in the spool
                    } finally {
                        unsent.addAndGet(-batch.size());
                    }
                }
            } catch (Throwable error) {  // keep delivering whatever happened to one batch
                LOG.warn("spark-router listener: delivery error: {}", error.toString());
            }
        }
    }

    /**
     * Up to batchSize records, gathered for at most flushIntervalMs; once close() asks for a flush, what
     * there is now. Never loses what it took.
     */
    private List<Map<String, Object>> nextBatch() {
        List<Map<String, Object>> batch = new ArrayList<>();
        long deadline = System.currentTimeMillis() + config.flushIntervalMs;
        try {
            while (batch.size() < config.batchSize && !stopping) {
                queue.drainTo(batch, config.batchSize - batch.size());
                long wait = deadline - System.currentTimeMillis();
                if (batch.size() >= config.batchSize || wait <= 0 || (flushing && !batch.isEmpty())) {
                    break;
                }
                // Short waits, so that a flush asked for by close() is seen at once.
                Map<String, Object> next = queue.poll(Math.min(wait, POLL_SLICE_MS), TimeUnit.MILLISECONDS);
                if (next != null) {
                    batch.add(next);
                }
            }
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
        return batch;
    }

    byte[] encode(List<Map<String, Object>> records) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("batch_id", UUID.randomUUID().toString());
        body.put("server_id", identity.serverId);
        body.put("spark_app_id", identity.sparkAppId);
        body.put("stages", records);
        return JSON.writeValueAsBytes(body);
    }

    /** Send a new batch, unless older ones wait in the spool: then it waits behind them, in order. */
    private void deliver(byte[] batch, int records) throws IOException {
        if (config.url == null || !spool.files().isEmpty() || System.currentTimeMillis() < retryAtMs) {
            toSpool(batch, records);
            return;
        }
        Outcome outcome = post(batch);
        if (outcome == Outcome.RETRY) {
            toSpool(batch, records);
        } else if (outcome == Outcome.SENT) {
            sentRecords.addAndGet(records);
        }
    }

    private void replaySpool() throws IOException {
        if (config.url == null || System.currentTimeMillis() < retryAtMs) {
            return;
        }
        for (Path file : spool.files()) {
            byte[] batch = spool.read(file);
            if (batch == null) {
                continue;
            }
            Outcome outcome = post(batch);
            if (outcome == Outcome.RETRY) {
                return;
            }
            spool.remove(file);
            if (routerDownLogged && spool.files().isEmpty()) {
                LOG.info("spark-router listener: the router answers again; the spool in {} is replayed", spool.dir());
                routerDownLogged = false;
            }
        }
    }

    private void toSpool(byte[] batch, int records) throws IOException {
        if (!spool.add(batch)) {
            long count = dropped.addAndGet(records);
            dropLog.warn("spark-router listener: spool {} is full ({} bytes max): dropped a batch of {} stage "
                    + "record(s) ({} dropped so far)", spool.dir(), config.spoolMaxBytes, records, count);
        }
    }

    enum Outcome { SENT, REJECTED, RETRY }

    private Outcome post(byte[] batch) {
        try {
            HttpResponse<String> response = http.send(request("/api/v1/ingest/stages", batch),
                    HttpResponse.BodyHandlers.ofString());
            int status = response.statusCode();
            if (status / 100 == 2) {
                backoffMs = 1000;
                return Outcome.SENT;
            }
            if (status / 100 == 4) {
                // The router will never take this batch: keeping it would block everything behind it.
                long count = dropped.addAndGet(countRecords(batch));
                String body = response.body();
                LOG.error("spark-router listener: router rejected a batch ({}): {}; dropped ({} dropped so far)",
                        status, body.length() > 500 ? body.substring(0, 500) : body, count);
                return Outcome.REJECTED;
            }
            routerDown("answered " + status);
        } catch (IOException error) {
            routerDown(error.getClass().getSimpleName() + ": " + error.getMessage());
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
        return Outcome.RETRY;
    }

    private void routerDown(String why) {
        retryAtMs = System.currentTimeMillis() + backoffMs;
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        if (!routerDownLogged) {
            LOG.warn("spark-router listener: router at {} unavailable ({}); spooling to {} and retrying",
                    config.url, why, spool.dir());
            routerDownLogged = true;
        }
    }

    HttpRequest request(String path, byte[] body) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(config.url + path))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (config.token != null) {
            builder.header("Authorization", "Bearer " + config.token);
        }
        return builder.build();
    }

    private static int countRecords(byte[] batch) {
        try {
            return JSON.readTree(batch).path("stages").size();
        } catch (IOException unreadable) {
            return 0;
        }
    }

    /**
     * Application end or JVM exit: let the sender send what it has for up to shutdownTimeoutMs (it stops
     * waiting for fuller batches), then spool what is left, so that a standalone run's last stages survive
     * a router that is down. Waiting for an empty queue is not enough: the sender may hold the last batch.
     */
    void close() {
        flushing = true;
        long deadline = System.currentTimeMillis() + config.shutdownTimeoutMs;
        while (unsent.get() > 0 && System.currentTimeMillis() < deadline && retryAtMs <= System.currentTimeMillis()) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException interrupted) {
                break;
            }
        }
        stopping = true;
        sender.interrupt();
        try {
            sender.join(Math.max(100, deadline - System.currentTimeMillis()));
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        List<Map<String, Object>> left = new ArrayList<>();
        queue.drainTo(left);
        try {
            for (int start = 0; start < left.size(); start += config.batchSize) {
                List<Map<String, Object>> part = left.subList(start, Math.min(left.size(), start + config.batchSize));
                toSpool(encode(part), part.size());
            }
        } catch (IOException error) {
            LOG.error("spark-router listener: could not spool {} record(s) at shutdown: {}", left.size(), error.toString());
        }
        if (!left.isEmpty()) {
            LOG.warn("spark-router listener: {} stage record(s) spooled to {} at shutdown; the next listener "
                    + "using this spool directory sends them", left.size(), spool.dir());
        }
    }
}
