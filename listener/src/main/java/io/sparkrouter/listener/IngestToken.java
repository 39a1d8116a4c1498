package io.sparkrouter.listener;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bearer token for the router's ingest endpoints. Read from, in order: the file named by
 * {@code spark.router.listener.tokenFile}, the environment variable {@code SPARK_ROUTER_INGEST_TOKEN}, the conf
 * {@code spark.router.listener.token}. The first two keep the token off the driver's command line. The file is
 * read again when the router refuses the token, so that a rotated secret is picked up without a restart.
 */
final class IngestToken {
    static final String ENV = "SPARK_ROUTER_INGEST_TOKEN";
    private static final Logger LOG = LoggerFactory.getLogger(IngestToken.class);

    private final Path file;
    private final String fromEnv;
    private final String fromConf;
    private volatile String value;
    private volatile String source;

    IngestToken(Path file, String fromEnv, String fromConf) {
        this.file = file;
        this.fromEnv = blankToNull(fromEnv);
        this.fromConf = blankToNull(fromConf);
        reload();
    }

    /** The token, or null: requests then carry no Authorization header. */
    String get() {
        return value;
    }

    /** Where the token came from, for log messages; never the token itself. */
    String source() {
        return source;
    }

    void reload() {
        if (file != null) {
            try {
                String read = blankToNull(Files.readString(file));
                if (read != null) {
                    value = read;
                    source = "token file " + file;
                    return;
                }
                LOG.warn("spark-router listener: token file {} is empty", file);
            } catch (IOException error) {
                LOG.warn("spark-router listener: cannot read token file {}: {}", file, error.toString());
            }
        }
        value = fromEnv != null ? fromEnv : fromConf;
        source = fromEnv != null ? "environment variable " + ENV
                : fromConf != null ? "conf spark.router.listener.token" : "no token";
    }

    private static String blankToNull(String text) {
        return text == null || text.isBlank() ? null : text.strip();
    }
}
