package io.sparkrouter.listener;

import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;

/**
 * What the router did with a batch, and what the listener does about it (docs/ingest-protocol.md). retryAfterMs:
 * how long the router (or a proxy) asked the listener to wait, from its Retry-After header; -1 without one.
 */
record RouterAnswer(Verdict verdict, int status, String body, long retryAfterMs) {

    enum Verdict {
        STORED,          // 2xx: done
        TOKEN_REFUSED,   // 401/403: the token is wrong, not the batch; keep it, retry with backoff
        REFUSED,         // any other answer: retry; the same refusal maxAttempts times: dead-letter/
        AWAY             // no answer, or the router or a proxy saying it is away or busy: keep it, retry after a
                         // backoff (or when Retry-After says), never dead-letter
    }

    static RouterAnswer of(int status, String body) {
        return of(status, body, null);
    }

    static RouterAnswer of(int status, String body, String retryAfter) {
        Verdict verdict;
        if (status / 100 == 2) {
            verdict = Verdict.STORED;
        } else if (status == 401 || status == 403) {
            verdict = Verdict.TOKEN_REFUSED;
        } else if (status == 429 || status == 502 || status == 503 || status == 504) {
            verdict = Verdict.AWAY;  // busy, restarting, its database away: not the batch's fault
        } else {
            verdict = Verdict.REFUSED;
        }
        return new RouterAnswer(verdict, status, body == null ? "" : body,
                retryAfterMs(retryAfter, System.currentTimeMillis()));
    }

    static RouterAnswer away(String why) {
        return new RouterAnswer(Verdict.AWAY, 0, why, -1);
    }

    /** A Retry-After header (RFC 9110: delay-seconds or an HTTP date) in ms from nowMs; -1 if absent or unreadable. */
    static long retryAfterMs(String header, long nowMs) {
        if (header == null || header.isBlank()) {
            return -1;
        }
        String value = header.trim();
        if (value.chars().allMatch(Character::isDigit)) {
            return value.length() > 9 ? Long.MAX_VALUE : Long.parseLong(value) * 1000;  // the caller caps it
        }
        try {
            long at = ZonedDateTime.parse(value, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli();
            return Math.max(0, at - nowMs);
        } catch (DateTimeParseException unreadable) {
            return -1;
        }
    }

    /** For the log: the start of the router's answer, on one line. */
    String bodyStart() {
        String start = body.length() > 200 ? body.substring(0, 200) + "…" : body;
        return start.replaceAll("\\s+", " ");
    }
}
