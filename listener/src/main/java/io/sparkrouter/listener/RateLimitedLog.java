package io.sparkrouter.listener;

import org.slf4j.Logger;

/** A message at most once per interval: a full queue or a wrong token must not flood the server log. */
final class RateLimitedLog {
    private final Logger log;
    private final long intervalMs;
    private long lastMs;

    RateLimitedLog(Logger log, long intervalMs) {
        this.log = log;
        this.intervalMs = intervalMs;
    }

    void warn(String format, Object... arguments) {
        if (due()) {
            log.warn(format, arguments);
        }
    }

    void error(String format, Object... arguments) {
        if (due()) {
            log.error(format, arguments);
        }
    }

    private synchronized boolean due() {
        long now = System.currentTimeMillis();
        if (now - lastMs >= intervalMs || lastMs == 0) {
            lastMs = now;
            return true;
        }
        return false;
    }
}
