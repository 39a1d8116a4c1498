package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
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
 * bounded queue; one sender thread batches them and hands each batch to {@link BatchSender}, which posts it or
 * spools it. Spooled batches are replayed, oldest first, before anything newer is sent.
 */
final class Delivery {
    private static final Logger LOG = LoggerFactory.getLogger(Delivery.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long POLL_SLICE_MS = 100;
    private static final long PRUNE_INTERVAL_MS = 60_000;  // how often dead letters past their retention are deleted
    static final int SERVER_ID_MAX = 200;
    static final int SPARK_APP_ID_MAX = 200;

    private final ListenerConfig config;
    private final Identity identity;
    private final Spool spool;
    private final Http http;
    private final BatchSender batches;
    private final BlockingQueue<StageRecord> queue;
    private final Thread sender;
    private volatile boolean stopping;
    private volatile boolean flushing;  // closing: send what there is now, wait for no more records
    // Records taken in but not yet sent, spooled or dropped: in the queue or in the sender's hands.
    private final AtomicInteger unsent = new AtomicInteger();
    private final AtomicLong queueFullDrops = new AtomicLong();
    private final RateLimitedLog dropLog = new RateLimitedLog(LOG, 30_000);
    private long nextPruneMs;  // at start, then every PRUNE_INTERVAL_MS

    /** Who we are, as the router knows us; the Spark app id is known only once the application starts. */
    static final class Identity {
        volatile String serverId;
        volatile String sparkAppId;
    }

    Delivery(ListenerConfig config, Identity identity) throws IOException {
        this.config = config;
        this.identity = identity;
        this.spool = new Spool(config.spoolDir, config.spoolMaxBytes);
        this.http = new Http(config.url, config.token);
        this.batches = new BatchSender(config, spool, http);
        this.queue = new ArrayBlockingQueue<>(config.queueCapacity);
        this.sender = new Thread(this::sendLoop, "spark-router-listener-sender");
        this.sender.setDaemon(true);
    }

    void start() {
        sender.start();
    }

    /** Called on the listener bus: never blocks. */
    void offer(StageRecord record) {
        unsent.incrementAndGet();
        if (!queue.offer(record)) {
            unsent.decrementAndGet();
            long count = queueFullDrops.incrementAndGet();
            dropLog.warn("spark-router listener: queue full ({} records): dropped stage {} ({} dropped this way so "
                    + "far); the router or the network is too slow", config.queueCapacity, record.stageId(), count);
        }
    }

    int queueSize() {
        return queue.size();
    }

    Spool spool() {
        return spool;
    }

    Http http() {
        return http;
    }

    /**
     * Stage records lost since start, each with its reason in the server log: the queue was full, or the spool
     * (a new batch dropped, or a dead letter deleted for its room).
     */
    long dropped() {
        return queueFullDrops.get() + batches.spoolFullDrops.get() + spool.deadLetterRecordsDropped.get();
    }

    long sentRecords() {
        return batches.sentRecords.get();
    }

    /** Batches the router refused the token of (401/403), since start. */
    long authFailures() {
        return batches.authFailures.get();
    }

    private void sendLoop() {
        while (!stopping) {
            try {
                List<StageRecord> batch = nextBatch();
                if (!batch.isEmpty()) {
                    try {
                        batches.sendNew(encode(batch), batch.size());
                    } finally {
                        unsent.addAndGet(-batch.size());
                    }
                }
                batches.replaySpool();
                if (System.currentTimeMillis() >= nextPruneMs) {
                    nextPruneMs = System.currentTimeMillis() + PRUNE_INTERVAL_MS;
                    spool.pruneDeadLetters(config.deadLetterRetentionMs);
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
    private List<StageRecord> nextBatch() {
        List<StageRecord> batch = new ArrayList<>();
        long deadline = System.currentTimeMillis() + config.flushIntervalMs;
        try {
            while (batch.size() < config.batchSize && !stopping) {
                queue.drainTo(batch, config.batchSize - batch.size());
                long wait = deadline - System.currentTimeMillis();
                if (batch.size() >= config.batchSize || wait <= 0 || (flushing && !batch.isEmpty())) {
                    break;
                }
                // Short waits, so that a flush asked for by close() is seen at once.
                StageRecord next = queue.poll(Math.min(wait, POLL_SLICE_MS), TimeUnit.MILLISECONDS);
                if (next != null) {
                    batch.add(next);
                }
            }
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        }
        return batch;
    }

    byte[] encode(List<StageRecord> records) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("batch_id", UUID.randomUUID().toString());
        body.put("server_id", Text.clean(identity.serverId, SERVER_ID_MAX));
        body.put("spark_app_id", Text.clean(identity.sparkAppId, SPARK_APP_ID_MAX));
        body.put("stages", records);
        return JSON.writeValueAsBytes(body);
    }

    /**
     * Application end or JVM exit: let the sender send what it has for up to shutdownTimeoutMs (it stops
     * waiting for fuller batches), then spool what is left, so that a standalone run's last stages survive
     * a router that is down. Waiting for an empty queue is not enough: the sender may hold the last batch.
     */
    void close() {
        flushing = true;
        long deadline = System.currentTimeMillis() + config.shutdownTimeoutMs;
        while (unsent.get() > 0 && System.currentTimeMillis() < deadline && !batches.backingOff()) {
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
        List<StageRecord> left = new ArrayList<>();
        queue.drainTo(left);
        try {
            for (int start = 0; start < left.size(); start += config.batchSize) {
                List<StageRecord> part = left.subList(start, Math.min(left.size(), start + config.batchSize));
                batches.toSpool(encode(part), part.size());
            }
        } catch (IOException error) {
            LOG.error("spark-router listener: could not spool {} record(s) at shutdown: {}",
                    left.size(), error.toString());
        }
        if (!left.isEmpty()) {
            LOG.warn("spark-router listener: {} stage record(s) spooled to {} at shutdown; the next listener "
                    + "using this spool directory sends them", left.size(), spool.dir());
        }
    }
}
