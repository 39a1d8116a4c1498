package io.sparkrouter.listener;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** What each answer of the router means to the listener, and how long its Retry-After asks it to wait. */
public class RouterAnswerTest {
    private static final long NOW = Instant.parse("2026-12-04T12:00:00Z").toEpochMilli();

    public void testBusyAndAwayAnswersAreNeverTheBatchsFault() {
        for (int status : new int[] {429, 502, 503, 504}) {
            Check.equal(RouterAnswer.Verdict.AWAY, RouterAnswer.of(status, "").verdict(), "HTTP " + status);
        }
        Check.equal(RouterAnswer.Verdict.REFUSED, RouterAnswer.of(500, "").verdict(), "HTTP 500");
        Check.equal(RouterAnswer.Verdict.REFUSED, RouterAnswer.of(422, "").verdict(), "HTTP 422");
        Check.equal(RouterAnswer.Verdict.TOKEN_REFUSED, RouterAnswer.of(401, "").verdict(), "HTTP 401");
        Check.equal(RouterAnswer.Verdict.STORED, RouterAnswer.of(200, "").verdict(), "HTTP 200");
    }

    public void testRetryAfterInSecondsOrAsAnHttpDate() {
        Check.equal(5_000L, RouterAnswer.retryAfterMs("5", NOW), "seconds");
        Check.equal(120_000L, RouterAnswer.retryAfterMs(" 120 ", NOW), "seconds, with spaces");
        Check.equal(0L, RouterAnswer.retryAfterMs("0", NOW), "zero");
        String inTwoMinutes = DateTimeFormatter.RFC_1123_DATE_TIME.format(
                Instant.ofEpochMilli(NOW + 120_000).atOffset(ZoneOffset.UTC));
        Check.equal("Fri, 4 Dec 2026 12:02:00 GMT", inTwoMinutes, "the date's form");
        Check.equal(120_000L, RouterAnswer.retryAfterMs(inTwoMinutes, NOW), "an HTTP date");
        Check.equal(0L, RouterAnswer.retryAfterMs("Fri, 04 Dec 2026 11:00:00 GMT", NOW), "a date in the past");
        Check.equal(Long.MAX_VALUE, RouterAnswer.retryAfterMs("99999999999999999999", NOW), "huge: the caller caps it");
        for (String unreadable : new String[] {null, "", "soon", "-5", "1.5", "Friday"}) {
            Check.equal(-1L, RouterAnswer.retryAfterMs(unreadable, NOW), "unreadable: " + unreadable);
        }
        Check.equal(3_000L, RouterAnswer.of(503, "", "3").retryAfterMs(), "read with the answer");
        Check.equal(-1L, RouterAnswer.of(503, "").retryAfterMs(), "no header");
    }
}
