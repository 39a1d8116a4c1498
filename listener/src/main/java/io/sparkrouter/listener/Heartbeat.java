package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.SparkContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;

/**
 * Every few seconds, tells the router that this Spark application is alive and what it is running:
 * Connect sessions and operations (from Spark Connect's own listener events), jobs, executors, the delivery
 * backlog and what went wrong with it.
 * The router judges the server's health and idleness (for restarts) from it. Not spooled: only the latest counts.
 */
final class Heartbeat {
    private static final Logger LOG = LoggerFactory.getLogger(Heartbeat.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String DRIVER = "driver";  // SparkContext.DRIVER_IDENTIFIER
    // The router's limits, in code points.
    static final int SPARK_VERSION_MAX = 40;
    static final int URL_MAX = 300;

    final Set<String> activeSessions = ConcurrentHashMap.newKeySet();
    final Set<String> activeOperations = ConcurrentHashMap.newKeySet();
    final AtomicInteger runningJobs = new AtomicInteger();
    final AtomicLong unattributedStages = new AtomicLong();
    // Live executors and their cores; the driver (local mode's only "executor") is not one of them.
    private final Map<String, Integer> executorCores = new ConcurrentHashMap<>();
    volatile long startTimeMs;

    private final ListenerConfig config;
    private final Delivery.Identity identity;
    private final Delivery delivery;
    private final RateLimitedLog failureLog = new RateLimitedLog(LOG, 60_000);
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "spark-router-listener-heartbeat");
        thread.setDaemon(true);
        return thread;
    });

    Heartbeat(ListenerConfig config, Delivery.Identity identity, Delivery delivery) {
        this.config = config;
        this.identity = identity;
        this.delivery = delivery;
    }

    void start() {
        if (config.url != null) {
            timer.scheduleWithFixedDelay(this::beat, 0, config.heartbeatIntervalMs, TimeUnit.MILLISECONDS);
        }
    }

    void stop() {
        timer.shutdownNow();
    }

    /** Beat now, not at the next interval: a restarted server is routed to again once the router hears it. */
    void beatNow() {
        if (config.url != null && !timer.isShutdown()) {
            timer.execute(this::beat);
        }
    }

    /** Connect posts its session and operation events through onOtherEvent; we match them by class name. */
    void connectEvent(Object event) {
        String type = event.getClass().getSimpleName();
        if (!type.startsWith("SparkListenerConnect")) {
            return;
        }
        switch (type) {
            case "SparkListenerConnectSessionStarted" -> add(activeSessions, event, "sessionId");
            case "SparkListenerConnectSessionClosed" -> remove(activeSessions, event, "sessionId");
            case "SparkListenerConnectOperationStarted" -> add(activeOperations, event, "operationId");
            case "SparkListenerConnectOperationFinished", "SparkListenerConnectOperationFailed",
                 "SparkListenerConnectOperationCanceled", "SparkListenerConnectOperationClosed" ->
                    remove(activeOperations, event, "operationId");
            default -> { }
        }
    }

    private static void add(Set<String> set, Object event, String accessor) {
        String id = field(event, accessor);
        if (id != null) {
            set.add(id);
        }
    }

    private static void remove(Set<String> set, Object event, String accessor) {
        String id = field(event, accessor);
        if (id != null) {
            set.remove(id);
        }
    }

    private static String field(Object event, String accessor) {
        try {
            Object value = event.getClass().getMethod(accessor).invoke(event);
            return value == null ? null : value.toString();
        } catch (ReflectiveOperationException unknown) {
            return null;
        }
    }

    void executorAdded(String executorId, int cores) {
        if (!DRIVER.equals(executorId)) {
            executorCores.put(executorId, cores);
        }
    }

    void executorRemoved(String executorId) {
        executorCores.remove(executorId);
    }

    private void beat() {
        try {
            if (identity.sparkAppId == null) {
                return;  // the application has not started yet
            }
            byte[] body = JSON.writeValueAsBytes(snapshot());
            // Http retries once on a fresh connection: the router closes idle keep-alive connections.
            HttpResponse<String> response = delivery.http().post("/api/v1/ingest/heartbeat", body);
            if (response.statusCode() == 401 || response.statusCode() == 403) {
                config.token.reload();
            }
            if (response.statusCode() / 100 != 2) {
                failureLog.warn("spark-router listener: heartbeat answered {}: {}", response.statusCode(),
                        RouterAnswer.of(response.statusCode(), response.body()).bodyStart());
            }
        } catch (IOException error) {
            failureLog.warn("spark-router listener: heartbeat to {} failed: {}", config.url, error.toString());
        } catch (InterruptedException interrupted) {
            Thread.currentThread().interrupt();
        } catch (Throwable error) {
            failureLog.warn("spark-router listener: heartbeat error: {}", error.toString());
        }
    }

    Map<String, Object> snapshot() throws IOException {
        Map<String, Object> beat = new LinkedHashMap<>();
        beat.put("server_id", Text.clean(identity.serverId, Delivery.SERVER_ID_MAX));
        beat.put("spark_app_id", Text.clean(identity.sparkAppId, Delivery.SPARK_APP_ID_MAX));
        beat.put("kind", config.kind);
        // getActive is private[spark] in Scala, public in bytecode; it never creates a context.
        Option<SparkContext> context = org.apache.spark.SparkContext$.MODULE$.getActive();
        beat.put("spark_version", Text.clean(context.isDefined() ? context.get().version() : null, SPARK_VERSION_MAX));
        beat.put("start_time_ms", startTimeMs > 0 ? startTimeMs : null);
        beat.put("sent_at_ms", System.currentTimeMillis());
        beat.put("ui_url", Text.clean(context.isDefined() && context.get().uiWebUrl().isDefined()
                ? context.get().uiWebUrl().get() : null, URL_MAX));
        beat.put("active_sessions", activeSessions.size());
        beat.put("active_operations", activeOperations.size());
        beat.put("running_jobs", Math.max(0, runningJobs.get()));
        beat.put("queue_size", delivery.queueSize());
        var spooled = delivery.spool().files();
        long bytes = 0;
        for (var file : spooled) {
            bytes += file.toFile().length();
        }
        beat.put("spool_files", spooled.size());
        beat.put("spool_bytes", bytes);
        beat.put("dropped_records", delivery.dropped());
        beat.put("unattributed_stages", unattributedStages.get());
        beat.put("dead_letter_files", delivery.spool().deadLetters().size());
        beat.put("auth_failures", delivery.authFailures());
        beat.put("executors", executorCores.size());
        beat.put("executor_cores", executorCores.values().stream().mapToInt(Integer::intValue).sum());
        beat.put("max_executors", config.maxExecutors);
        beat.put("connect_url", Text.clean(config.connectUrl, URL_MAX));
        return beat;
    }
}
