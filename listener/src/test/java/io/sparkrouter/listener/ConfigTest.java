package io.sparkrouter.listener;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.SparkConf;

/** Settings: where the ingest token comes from, the new confs' defaults. */
public class ConfigTest {
    private final Path dir = Check.tempDir();

    private static String token(SparkConf conf, String fromEnv) {
        return new ListenerConfig(conf, fromEnv).token.get();
    }

    public void testTokenFileComesFirstThenTheEnvironmentThenTheConf() throws Exception {
        Path file = dir.resolve("ingest-token");
        Files.writeString(file, "  from-file\n");
        SparkConf conf = new SparkConf(false).set("spark.router.listener.token", "from-conf");
        Check.equal("from-conf", token(conf, null), "conf only");
        Check.equal("from-env", token(conf, "from-env"), "environment over conf");
        conf.set("spark.router.listener.tokenFile", file.toString());
        Check.equal("from-file", token(conf, "from-env"), "file over environment, stripped");
        Files.writeString(file, "\n");
        Check.equal("from-env", token(conf, "from-env"), "an empty file is no token");
        conf.set("spark.router.listener.tokenFile", dir.resolve("missing").toString());
        Check.equal("from-env", token(conf, "from-env"), "a missing file is no token");
        Check.equal(null, token(new SparkConf(false), ""), "none at all");
    }

    public void testNewConfsAndTheirDefaults() {
        ListenerConfig defaults = new ListenerConfig(new SparkConf(false), null);
        Check.equal(5, defaults.maxAttempts, "maxAttempts");
        Check.equal(null, defaults.connectUrl, "connectUrl");
        Check.equal(null, defaults.maxExecutors, "max executors without dynamic allocation");
        Check.equal(7L * 24 * 3600 * 1000, defaults.deadLetterRetentionMs, "deadLetterRetentionMs: 7 days");
        ListenerConfig set = new ListenerConfig(new SparkConf(false)
                .set("spark.router.listener.maxAttempts", "2")
                .set("spark.router.listener.connectUrl", "sc://connect-a:15002")
                .set("spark.dynamicAllocation.enabled", "true")
                .set("spark.dynamicAllocation.maxExecutors", "12"), null);
        Check.equal(2, set.maxAttempts, "maxAttempts");
        Check.equal("sc://connect-a:15002", set.connectUrl, "connectUrl");
        Check.equal(12, set.maxExecutors, "max executors");
        Check.equal(Integer.MAX_VALUE, new ListenerConfig(new SparkConf(false)
                .set("spark.dynamicAllocation.enabled", "true"), null).maxExecutors, "Spark's default: no bound");
    }
}
