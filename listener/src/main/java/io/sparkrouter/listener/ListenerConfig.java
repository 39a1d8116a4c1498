package io.sparkrouter.listener;

import java.nio.file.Path;
import java.nio.file.Paths;
import org.apache.spark.SparkConf;

/** The listener's settings, read once from the {@code spark.router.listener.*} confs. */
final class ListenerConfig {
    static final String PREFIX = "spark.router.listener.";

    final String url;            // router base URL; null = spool everything (nothing is lost)
    final IngestToken token;     // tokenFile, else $SPARK_ROUTER_INGEST_TOKEN, else the token conf
    final Path spoolDir;
    final long spoolMaxBytes;    // batches waiting and dead letters together
    final long deadLetterRetentionMs;  // dead letters older than this are deleted; 0 or less: kept
    final long flushIntervalMs;
    final int batchSize;
    final int queueCapacity;
    final long heartbeatIntervalMs;
    final long shutdownTimeoutMs;
    final int maxAttempts;       // the same refusal this often: the batch goes to dead-letter/
    final long retryBackoffMs;   // first wait after a failure; doubles on each failure after it
    final long maxBackoffMs;
    final String serverId;       // null = the Spark application id, known later
    final String kind;           // connect | standalone
    final String connectUrl;     // the Connect URL clients should use for this server, or null
    final Integer maxExecutors;  // dynamic allocation's bound, or null when it is off

    ListenerConfig(SparkConf conf) {
        this(conf, System.getenv(IngestToken.ENV));
    }

    /** With the token environment variable given, for tests. */
    ListenerConfig(SparkConf conf, String tokenFromEnv) {
        url = blankToNull(conf.get(PREFIX + "url", "").trim().replaceAll("/+$", ""));
        String tokenFile = blankToNull(conf.get(PREFIX + "tokenFile", "").trim());
        token = new IngestToken(tokenFile == null ? null : Paths.get(tokenFile), tokenFromEnv,
                conf.get(PREFIX + "token", ""));
        spoolDir = Paths.get(conf.get(PREFIX + "spoolDir",
                Paths.get(System.getProperty("java.io.tmpdir"), "spark-router-spool").toString()));
        spoolMaxBytes = conf.getLong(PREFIX + "spoolMaxBytes", 256L * 1024 * 1024);
        deadLetterRetentionMs = conf.getLong(PREFIX + "deadLetterRetentionMs", 7L * 24 * 3600 * 1000);
        flushIntervalMs = conf.getLong(PREFIX + "flushIntervalMs", 1000);
        batchSize = conf.getInt(PREFIX + "batchSize", 500);
        queueCapacity = conf.getInt(PREFIX + "queueCapacity", 100_000);
        heartbeatIntervalMs = conf.getLong(PREFIX + "heartbeatIntervalMs", 5000);
        shutdownTimeoutMs = conf.getLong(PREFIX + "shutdownTimeoutMs", 5000);
        maxAttempts = Math.max(1, conf.getInt(PREFIX + "maxAttempts", 5));
        retryBackoffMs = Math.max(1, conf.getLong(PREFIX + "retryBackoffMs", 1000));
        maxBackoffMs = Math.max(retryBackoffMs, conf.getLong(PREFIX + "maxBackoffMs", 30_000));
        serverId = blankToNull(conf.get(PREFIX + "serverId", ""));
        kind = conf.get(PREFIX + "kind", detectKind(conf));
        connectUrl = blankToNull(conf.get(PREFIX + "connectUrl", "").trim());
        maxExecutors = conf.getBoolean("spark.dynamicAllocation.enabled", false)
                ? (Integer) conf.getInt("spark.dynamicAllocation.maxExecutors", Integer.MAX_VALUE) : null;
    }

    /** A Spark Connect server, or a plain application (a standalone run). */
    private static String detectKind(SparkConf conf) {
        String command = System.getProperty("sun.java.command", "");
        boolean connect = command.contains("SparkConnectServer")
                || conf.contains("spark.connect.grpc.binding.port");
        return connect ? "connect" : "standalone";
    }

    private static String blankToNull(String text) {
        return text == null || text.isEmpty() ? null : text;
    }
}
