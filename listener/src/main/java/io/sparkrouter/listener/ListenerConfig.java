package io.sparkrouter.listener;

import java.nio.file.Path;
import java.nio.file.Paths;
import org.apache.spark.SparkConf;

/** The listener's settings, read once from the {@code spark.router.listener.*} confs. */
final class ListenerConfig {
    static final String PREFIX = "spark.router.listener.";

    final String url;            // router base URL; null = spool everything (nothing is lost)
    final String token;          // bearer token for the router's ingest endpoints, or null
    final Path spoolDir;
    final long spoolMaxBytes;
    final long flushIntervalMs;
    final int batchSize;
    final int queueCapacity;
    final long heartbeatIntervalMs;
    final long shutdownTimeoutMs;
    final String serverId;       // null = the Spark application id, known later
    final String kind;           // connect | standalone

    ListenerConfig(SparkConf conf) {
        String configuredUrl = conf.get(PREFIX + "url", "").trim();
        url = configuredUrl.isEmpty() ? null : configuredUrl.replaceAll("/+$", "");
        String configuredToken = conf.get(PREFIX + "token", "");
        token = configuredToken.isEmpty() ? null : configuredToken;
        spoolDir = Paths.get(conf.get(PREFIX + "spoolDir",
                Paths.get(System.getProperty("java.io.tmpdir"), "spark-router-spool").toString()));
        spoolMaxBytes = conf.getLong(PREFIX + "spoolMaxBytes", 256L * 1024 * 1024);
        flushIntervalMs = conf.getLong(PREFIX + "flushIntervalMs", 1000);
        batchSize = conf.getInt(PREFIX + "batchSize", 500);
        queueCapacity = conf.getInt(PREFIX + "queueCapacity", 100_000);
        heartbeatIntervalMs = conf.getLong(PREFIX + "heartbeatIntervalMs", 5000);
        shutdownTimeoutMs = conf.getLong(PREFIX + "shutdownTimeoutMs", 5000);
        String configuredServerId = conf.get(PREFIX + "serverId", "");
        serverId = configuredServerId.isEmpty() ? null : configuredServerId;
        kind = conf.get(PREFIX + "kind", detectKind(conf));
    }

    /** A Spark Connect server, or a plain application (a standalone run). */
    private static String detectKind(SparkConf conf) {
        String command = System.getProperty("sun.java.command", "");
        boolean connect = command.contains("SparkConnectServer")
                || conf.contains("spark.connect.grpc.binding.port");
        return connect ? "connect" : "standalone";
    }
}
