package io.sparkrouter.listener;

/** What the router did with a batch, and what the listener does about it (docs/ingest-protocol.md). */
record RouterAnswer(Verdict verdict, int status, String body) {

    enum Verdict {
        STORED,          // 2xx: done
        TOKEN_REFUSED,   // 401/403: the token is wrong, not the batch; keep it, retry with backoff
        REFUSED,         // any other answer: retry; the same refusal maxAttempts times: dead-letter/
        AWAY             // no answer, or a proxy saying the router is away or busy: keep it, retry with backoff
    }

    static RouterAnswer of(int status, String body) {
        Verdict verdict;
        if (status / 100 == 2) {
            verdict = Verdict.STORED;
        } else if (status == 401 || status == 403) {
            verdict = Verdict.TOKEN_REFUSED;
        } else if (status == 429 || status == 502 || status == 503 || status == 504) {
            verdict = Verdict.AWAY;  // what a proxy answers while the router restarts: not the batch's fault
        } else {
            verdict = Verdict.REFUSED;
        }
        return new RouterAnswer(verdict, status, body == null ? "" : body);
    }

    static RouterAnswer away(String why) {
        return new RouterAnswer(Verdict.AWAY, 0, why);
    }

    /** For the log: the start of the router's answer, on one line. */
    String bodyStart() {
        String start = body.length() > 200 ? body.substring(0, 200) + "…" : body;
        return start.replaceAll("\\s+", " ");
    }
}
