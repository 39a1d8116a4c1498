package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.SparkConf;

/** The heartbeat's fields, old and new, and their limits. */
public class HeartbeatTest {
    private final String spoolDir = Check.tempDir().toString();

    public void testNewFieldsFromTheListenersEvents() throws Exception {
        try (FakeRouter router = new FakeRouter()) {
            SparkConf conf = new SparkConf(false)
                    .set("spark.app.id", "local-1")
                    .set("spark.router.listener.url", router.url())
                    .set("spark.router.listener.spoolDir", spoolDir)
                    .set("spark.router.listener.heartbeatIntervalMs", "50")
                    .set("spark.router.listener.connectUrl", "sc://connect-a:15002")
                    .set("spark.dynamicAllocation.enabled", "true")
                    .set("spark.dynamicAllocation.maxExecutors", "8");
            RouterListener listener = new RouterListener(conf);
            try {
                listener.onExecutorAdded(SparkEvents.executorAdded("driver", 16));
                listener.onExecutorAdded(SparkEvents.executorAdded("1", 4));
                listener.onExecutorAdded(SparkEvents.executorAdded("2", 4));
                listener.onExecutorAdded(SparkEvents.executorAdded("3", 2));
                listener.onExecutorRemoved(SparkEvents.executorRemoved("2"));
                Check.waitUntil(() -> !router.heartbeats().isEmpty()
                        && last(router).get("executors").asInt() == 2, 5_000, "a heartbeat with two executors");
                JsonNode beat = last(router);
                Check.equal(6, beat.get("executor_cores").asInt(), "executor_cores");
                Check.equal(8, beat.get("max_executors").asInt(), "max_executors");
                Check.equal("sc://connect-a:15002", beat.get("connect_url").asText(), "connect_url");
                Check.equal(0, beat.get("dead_letter_files").asInt(), "dead_letter_files");
                Check.equal(0, beat.get("auth_failures").asInt(), "auth_failures");
                Set<String> fields = new TreeSet<>();
                beat.fieldNames().forEachRemaining(fields::add);
                Check.equal(Check.documentedFields("## `POST /api/v1/ingest/heartbeat`"), fields,
                        "the heartbeat's fields are the documented ones");
            } finally {
                listener.onApplicationEnd(null);
            }
        }
    }

    public void testNullsWhenUnsetAndStringsWithinLimits() throws Exception {
        Delivery.Identity identity = new Delivery.Identity();
        identity.serverId = "\u0000" + "s".repeat(300);
        identity.sparkAppId = "local-2";
        ListenerConfig config = new ListenerConfig(new SparkConf(false)
                .set("spark.router.listener.spoolDir", spoolDir)
                .set("spark.router.listener.connectUrl", "sc://" + "h".repeat(400)), null);
        Map<String, Object> beat = new Heartbeat(config, identity, new Delivery(config, identity)).snapshot();
        Check.equal("\uFFFD" + "s".repeat(199), beat.get("server_id"), "server_id cleaned and cut");
        Check.equal(300, ((String) beat.get("connect_url")).length(), "connect_url cut");
        Check.equal(null, beat.get("max_executors"), "max_executors without dynamic allocation");
        Check.equal(0, beat.get("executors"), "no executors yet");
        Check.equal(0L, beat.get("auth_failures"), "auth_failures");
    }

    private static JsonNode last(FakeRouter router) {
        var beats = router.heartbeats();
        return beats.get(beats.size() - 1).body();
    }
}
