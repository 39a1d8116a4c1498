package io.sparkrouter.session;

import java.io.File;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import org.apache.spark.sql.SparkSession;

/**
 * The SparkSession of a JVM app that runs where Spark Connect Router decides: one jar, both modes.
 *
 * <pre>
 *   SparkSession spark = RouterSession.builder().appName("orders").getOrCreate();
 * </pre>
 *
 * <p>{@code spark-router run} says which mode through the environment, as for Python apps
 * ({@code client_runtime/session.py}):
 * <ul>
 *   <li>{@code SPARK_ROUTER_MODE}: {@code connect} or {@code standalone} (unset: standalone, plain spark-submit);</li>
 *   <li>{@code SPARK_REMOTE} or {@code SPARK_ROUTER_CONNECT_URL}: the server (connect mode; the launcher's
 *       SPARK_REMOTE carries the run in its user id);</li>
 *   <li>{@code SPARK_ROUTER_SESSION_CONFS}: a JSON object of session confs ({@code spark.router.appId},
 *       {@code spark.router.runId}, the app's own confs);</li>
 *   <li>{@code SPARK_ROUTER_ARTIFACTS}: the app's jar(s), added to the Connect session so that its UDF and lambda
 *       classes load on the server.</li>
 * </ul>
 *
 * <p>On Connect the builder is the unified builder set to Connect mode with the server and the confs; the
 * session it creates gets the app's jar as an artifact and is closed when the JVM exits. Standalone, it is the
 * plain builder: spark-submit has given the application its confs.
 */
public final class RouterSession {

    // What the launcher tells the app in its environment (client_runtime/protocol.py: MODE_ENV, SESSION_CONFS_ENV,
    // ARTIFACTS_ENV; tests/listener/test_java_constants.py checks them).
    static final String MODE_ENV = "SPARK_ROUTER_MODE";
    static final String SESSION_CONFS_ENV = "SPARK_ROUTER_SESSION_CONFS";
    static final String ARTIFACTS_ENV = "SPARK_ROUTER_ARTIFACTS";

    private static final Set<SparkSession> ATTACHED = Collections.newSetFromMap(new IdentityHashMap<>());

    private RouterSession() {
    }

    /** A builder already set for the run's mode; the app adds its appName/config and calls getOrCreate(). */
    public static SparkSession.Builder builder() {
        return new RoutedBuilder(System.getenv());
    }

    /** True when the launcher runs this app as a Spark Connect client. */
    public static boolean isConnect() {
        return "connect".equals(System.getenv(MODE_ENV));
    }

    /** The builder of a routed run: on Connect, the server and confs up front, the artifacts after creation. */
    static final class RoutedBuilder extends SparkSession.Builder {
        private final boolean connect;
        private final String[] artifacts;

        RoutedBuilder(Map<String, String> env) {
            connect = "connect".equals(env.get(MODE_ENV));
            String paths = env.getOrDefault(ARTIFACTS_ENV, "");
            artifacts = paths.isEmpty() ? new String[0] : paths.split(File.pathSeparator);
            if (!connect) {
                return;
            }
            String url = firstSet(env.get("SPARK_REMOTE"), env.get("SPARK_ROUTER_CONNECT_URL"));
            if (url == null) {
                throw new IllegalStateException(
                    "SPARK_ROUTER_MODE=connect needs SPARK_ROUTER_CONNECT_URL (sc://host:port)");
            }
            connect();
            remote(url);
            for (Map.Entry<String, String> conf : parseConfs(env.get(SESSION_CONFS_ENV)).entrySet()) {
                config(conf.getKey(), conf.getValue());
            }
        }

        @Override
        public SparkSession getOrCreate() {
            return attach(super.getOrCreate());
        }

        @Override
        public SparkSession create() {
            return attach(super.create());
        }

        private SparkSession attach(SparkSession session) {
            if (!connect) {
                return session;
            }
            synchronized (ATTACHED) {
                if (!ATTACHED.add(session)) {
                    return session;
                }
            }
            for (String path : artifacts) {
                if (!path.isEmpty()) {
                    session.addArtifact(path);
                }
            }
            // Release the server-side session at exit; otherwise it lingers for the server's session timeout.
            Runtime.getRuntime().addShutdownHook(new Thread(() -> closeQuietly(session), "spark-router-close"));
            return session;
        }
    }

    private static void closeQuietly(SparkSession session) {
        try {
            session.stop();
        } catch (RuntimeException e) {
            // The server may be gone already; exiting must not fail because of it.
        }
    }

    private static String firstSet(String... values) {
        for (String value : values) {
            if (value != null && !value.isEmpty()) {
                return value;
            }
        }
        return null;
    }

    /** A flat JSON object of strings, as the launcher writes it ({@code json.dumps} of a str-to-str dict). */
    static Map<String, String> parseConfs(String json) {
        Map<String, String> confs = new LinkedHashMap<>();
        if (json == null || json.isBlank()) {
            return confs;
        }
        JsonReader reader = new JsonReader(json);
        reader.expect('{');
        if (reader.peek() == '}') {
            reader.expect('}');
            return confs;
        }
        do {
            String key = reader.string();
            reader.expect(':');
            confs.put(key, reader.string());
        } while (reader.comma());
        reader.expect('}');
        return confs;
    }

    private static final class JsonReader {
        private final String text;
        private int at;

        JsonReader(String text) {
            this.text = text;
        }

        char peek() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
                at++;
            }
            if (at >= text.length()) {
                throw error("unexpected end");
            }
            return text.charAt(at);
        }

        void expect(char wanted) {
            if (peek() != wanted) {
                throw error("expected '" + wanted + "'");
            }
            at++;
        }

        boolean comma() {
            if (peek() == ',') {
                at++;
                return true;
            }
            return false;
        }

        String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                if (at >= text.length()) {
                    throw error("unterminated string");
                }
                char c = text.charAt(at++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char escaped = text.charAt(at++);
                switch (escaped) {
                    case 'n': out.append('\n'); break;
                    case 't': out.append('\t'); break;
                    case 'r': out.append('\r'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'u':
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        at += 4;
                        break;
                    default: out.append(escaped);  // \" \\ \/
                }
            }
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException(SESSION_CONFS_ENV + " is not a JSON object of strings ("
                + what + " at " + at + ")");
        }
    }
}
