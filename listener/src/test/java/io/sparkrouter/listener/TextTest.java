package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;

/** Strings are cut and cleaned so that the router can store them. */
public class TextTest {
    private static final String EMOJI = "\uD83D\uDE00";  // 😀: one code point, two Java chars

    public void testNulIsReplaced() {
        Check.equal("a\uFFFDb", Text.clean("a\u0000b", 10), "NUL");
    }

    public void testEmojiAtTheCutIsNotSplit() {
        String text = "ab" + EMOJI + "cd";
        Check.equal("ab" + EMOJI, Text.clean(text, 3), "cut after the emoji");
        Check.equal("ab", Text.clean(text, 2), "cut before the emoji");
        String manyEmoji = EMOJI.repeat(250);
        String cut = Text.clean(manyEmoji, 200);
        Check.equal(200, cut.codePointCount(0, cut.length()), "code points kept");
        Check.equal(EMOJI.repeat(200), cut, "whole emoji only");
    }

    public void testLoneSurrogatesAreReplaced() {
        Check.equal("x\uFFFDy", Text.clean("x\uD83Dy", 10), "lone high surrogate");
        Check.equal("\uFFFD", Text.clean("\uDE00", 10), "lone low surrogate");
    }

    public void testShortStringsAndNullPassUnchanged() {
        Check.equal(null, Text.clean(null, 10), "null");
        Check.equal("abc", Text.clean("abc", 3), "short");
        Check.equal("", Text.clean("abc", 0), "limit 0");
    }

    public void testRecordStringsRespectTheRoutersLimits() throws Exception {
        String nul = "\u0000";
        String longText = (EMOJI + nul + "x").repeat(600);  // 1,800 code points
        StageRecord record = new StageRecord(longText, longText, longText, longText, longText, 1, 2, 0, longText,
                "failed", longText, null, null, null, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        byte[] json = new ObjectMapper().writeValueAsBytes(record);
        Check.isTrue(!new String(json, StandardCharsets.UTF_8).contains("\\u0000"), "no NUL in the JSON");
        JsonNode node = new ObjectMapper().readTree(json);
        int[][] limits = {{0, 200}, {1, 100}, {2, 100}, {3, 100}, {4, 200}, {5, 200}, {6, 1000}};
        String[] fields = {"app_id", "run_id", "connect_session_id", "connect_operation_id", "connect_user_id",
                "name", "failure_reason"};
        for (int[] limit : limits) {
            String value = node.get(fields[limit[0]]).asText();
            Check.equal(limit[1], value.codePointCount(0, value.length()), fields[limit[0]] + " length");
            Check.isTrue(value.indexOf('\u0000') < 0, fields[limit[0]] + " has no NUL");
        }
    }

    public void testBatchIdentityRespectsTheRoutersLimits() throws Exception {
        Delivery.Identity identity = new Delivery.Identity();
        identity.serverId = "s\u0000" + EMOJI.repeat(300);
        identity.sparkAppId = "a".repeat(500);
        Delivery delivery = new Delivery(new ListenerConfig(new org.apache.spark.SparkConf(false)
                .set("spark.router.listener.spoolDir", Check.tempDir().toString()), null), identity);
        JsonNode batch = new ObjectMapper().readTree(delivery.encode(java.util.List.of(SparkEvents.record(1))));
        String serverId = batch.get("server_id").asText();
        Check.equal("s\uFFFD" + EMOJI.repeat(198), serverId, "server_id cleaned and cut at 200 code points");
        Check.equal(200, batch.get("spark_app_id").asText().length(), "spark_app_id cut");
    }
}
