package io.sparkrouter.listener;

import org.slf4j.Logger;

/** A warning at most once per interval: a full queue must not flood the server log. */
final class RateLimitedLog {
    private final Logger log;
    private final long intervalMs;
    private long lastMs;

    RateLimitedLog(Logger log, long intervalMs) {
        this.log = log;
        this.intervalMs = intervalMs;
    }

    synchronized void warn(String format, Object... arguments) {
        long now = System.currentTimeMillis();
        if (now - lastMs >= intervalMs || lastMs == 0) {
            lastMs = now;
            log.warn(format, arguments);
        }
    }
}
