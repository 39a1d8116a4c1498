package io.sparkrouter.listener;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;

/**
 * POSTs JSON to the router, with the ingest token. A keep-alive connection the router closed while it was idle
 * fails the next request ("HTTP/1.1 header parser received no bytes"); such a failure is retried once on a fresh
 * client, hence a fresh connection. Refused connections and timeouts are not retried here: the router is away.
 */
final class Http {
    private final String baseUrl;
    private final IngestToken token;
    private volatile HttpClient client = newClient();

    Http(String baseUrl, IngestToken token) {
        this.baseUrl = baseUrl;
        this.token = token;
    }

    IngestToken token() {
        return token;
    }

    private static HttpClient newClient() {
        // HTTP/1.1: the JDK client otherwise tries an h2c upgrade that plain HTTP servers answer badly.
        return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
    }

    HttpResponse<String> post(String path, byte[] body) throws IOException, InterruptedException {
        HttpRequest request = request(path, body);
        try {
            return client.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException | HttpTimeoutException away) {
            throw away;
        } catch (IOException closedConnection) {
            client = newClient();  // ingest is idempotent: sending again is safe
            return client.send(request, HttpResponse.BodyHandlers.ofString());
        }
    }

    private HttpRequest request(String path, byte[] body) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        String bearer = token.get();
        if (bearer != null) {
            builder.header("Authorization", "Bearer " + bearer);
        }
        return builder.build();
    }
}
