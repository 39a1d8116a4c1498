package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends encoded batches and decides, from the router's answer, what becomes of each (docs/ingest-protocol.md).
 * No batch holds up the others: one the router refuses is tried again later, after the batches behind it, and
 * moved to dead-letter/ after maxAttempts refusals with the same HTTP status. A refused token or an absent or
 * busy router (no answer, 429, 502, 503, 504) refuse every batch alike: then nothing is sent until a backoff has
 * passed (or the time the answer's Retry-After asked for, at most maxBackoffMs), and no batch is blamed.
 * Used by the sender thread only, except the counters.
 */
final class BatchSender {
    private static final Logger LOG = LoggerFactory.getLogger(BatchSender.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ListenerConfig config;
    private final Spool spool;
    private final Http http;
    private volatile long retryAtMs;  // the router is away or refused the token: nothing is sent before
    private long backoffMs;
    private boolean routerAwayLogged;
    final AtomicLong sentRecords = new AtomicLong();
    final AtomicLong spoolFullDrops = new AtomicLong();
    final AtomicLong authFailures = new AtomicLong();
    private final RateLimitedLog dropLog = new RateLimitedLog(LOG, 30_000);
    private final RateLimitedLog refusalLog = new RateLimitedLog(LOG, 30_000);
    private final RateLimitedLog tokenLog = new RateLimitedLog(LOG, 60_000);

    BatchSender(ListenerConfig config, Spool spool, Http http) {
        this.config = config;
        this.spool = spool;
        this.http = http;
        this.backoffMs = config.retryBackoffMs;
    }

    /** Send a new batch, unless older ones wait in the spool: then it waits behind them, in order. */
    void sendNew(byte[] batch, int records) throws IOException {
        if (config.url == null || backingOff() || !spool.files().isEmpty()) {
            toSpool(batch, records);
            return;
        }
        RouterAnswer answer = post(batch);
        if (answer.verdict() == RouterAnswer.Verdict.STORED) {
            stored(records);
            return;
        }
        Path file = toSpool(batch, records);
        if (file != null) {
            settle(file, batch, answer);
        }
    }

    /** Every spooled batch that is due, oldest first; one the router refuses does not stop the others. */
    void replaySpool() throws IOException {
        if (config.url == null) {
            return;
        }
        for (Path file : spool.files()) {
            if (backingOff()) {
                return;
            }
            if (!due(file)) {
                continue;
            }
            byte[] batch = spool.read(file);
            if (batch != null) {
                settle(file, batch, post(batch));
            }
        }
    }

    /** A batch the router refused is tried again after a backoff that grows with its refusals. */
    private boolean due(Path file) {
        int refusals = Spool.refusalsOf(file).times();
        if (refusals == 0) {
            return true;
        }
        try {
            long wait = Math.min(config.maxBackoffMs, config.retryBackoffMs << Math.min(refusals - 1, 20));
            return System.currentTimeMillis() >= Files.getLastModifiedTime(file).toMillis() + wait;
        } catch (IOException gone) {
            return false;
        }
    }

    /** What becomes of a spooled batch after the router's answer. */
    private void settle(Path file, byte[] batch, RouterAnswer answer) throws IOException {
        switch (answer.verdict()) {
            case STORED -> {
                spool.remove(file);
                stored(countRecords(batch));
            }
            case TOKEN_REFUSED -> tokenRefused(answer);
            case REFUSED -> refused(file, answer);
            case AWAY -> routerAway(answer);
        }
    }

    private void stored(int records) {
        sentRecords.addAndGet(records);
        backoffMs = config.retryBackoffMs;
        if (routerAwayLogged) {
            LOG.info("spark-router listener: the router at {} stores batches again", config.url);
            routerAwayLogged = false;
        }
    }

    private void refused(Path file, RouterAnswer answer) throws IOException {
        Spool.Refusals refusals = Spool.refusalsOf(file).plus(answer.status());
        if (refusals.times() < config.maxAttempts) {
            spool.markRefused(file, refusals);
            refusalLog.warn("spark-router listener: the router refused batch {} with HTTP {} ({} of {} times before "
                    + "it goes to dead-letter): {}", file.getFileName(), answer.status(), refusals.times(),
                    config.maxAttempts, answer.bodyStart());
            return;
        }
        Path dead = spool.toDeadLetter(file, refusals);
        if (dead != null) {
            LOG.error("spark-router listener: the router refused a batch {} times with HTTP {}: moved it to {} "
                    + "(move it back to {} to send it again). The router said: {}", refusals.times(),
                    answer.status(), dead, spool.dir(), answer.bodyStart());
        }
    }

    private void tokenRefused(RouterAnswer answer) {
        long count = authFailures.incrementAndGet();
        config.token.reload();  // a rotated token file is picked up at the next try
        tokenLog.error("spark-router listener: the router at {} refused the ingest token (HTTP {}): the token from {} "
                + "is wrong or was rotated. Batches are kept in {} and retried, none is dropped; {} refusal(s) "
                + "since start. Give the listener the router's ingest token (spark.router.listener.tokenFile, "
                + "${} or spark.router.listener.token). The router said: {}", config.url, answer.status(),
                config.token.source(), spool.dir(), count, IngestToken.ENV, answer.bodyStart());
        backOff(-1);
    }

    private void routerAway(RouterAnswer answer) {
        long waitMs = backOff(answer.retryAfterMs());
        if (!routerAwayLogged) {
            String why = answer.status() == 0 ? answer.body() : "HTTP " + answer.status();
            LOG.warn("spark-router listener: router at {} unavailable ({}); spooling to {} and retrying in {} ms{}",
                    config.url, why, spool.dir(), waitMs, answer.retryAfterMs() >= 0 ? " (its Retry-After)" : "");
            routerAwayLogged = true;
        }
    }

    /**
     * Send nothing for a while: as long as the router asked (retryAfterMs, if not negative), within retryBackoffMs
     * and maxBackoffMs, so that a wrong header can neither stop delivery for long nor make it spin; else the
     * backoff, which doubles. Returns the wait.
     */
    private long backOff(long retryAfterMs) {
        long waitMs = retryAfterMs < 0 ? backoffMs
                : Math.max(config.retryBackoffMs, Math.min(retryAfterMs, config.maxBackoffMs));
        retryAtMs = System.currentTimeMillis() + waitMs;
        backoffMs = Math.min(backoffMs * 2, config.maxBackoffMs);
        return waitMs;
    }

    boolean backingOff() {
        return System.currentTimeMillis() < retryAtMs;
    }

    /** The file the batch was written to, or null if the spool is full (the batch is dropped and counted). */
    Path toSpool(byte[] batch, int records) throws IOException {
        Path file = spool.add(batch);
        if (file == null) {
            long count = spoolFullDrops.addAndGet(records);
            dropLog.warn("spark-router listener: spool {} is full ({} bytes max) with batches waiting for the router: "
                    + "dropped a batch of {} stage record(s) ({} dropped this way so far)", spool.dir(),
                    config.spoolMaxBytes, records, count);
        }
        return file;
    }

    private RouterAnswer post(byte[] batch) {
        try {
            HttpResponse<String> response = http.post("/api/v1/ingest/stages", batch);
            return RouterAnswer.of(response.statusCode(), response.body(),
                    response.headers().firstValue("Retry-After").orElse(null));
        } catch (IOException error) {
            String why = error.getClass().getSimpleName();
            return RouterAnswer.away(error.getMessage() == null ? why : why + ": " + error.getMessage());
        } catch (InterruptedException interrupted) {
            // close() stops the wait; the flag is not set again, or spooling the batch next would fail.
            return RouterAnswer.away("interrupted at shutdown");
        }
    }

    private static int countRecords(byte[] batch) {
        try {
            return JSON.readTree(batch).path("stages").size();
        } catch (IOException unreadable) {
            return 0;
        }
    }
}
