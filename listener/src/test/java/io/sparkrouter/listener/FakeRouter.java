package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToIntFunction;

/**
 * The router's ingest endpoints, in process on 127.0.0.1: answers each stage batch with the status the test
 * chooses, and remembers every request, in order.
 */
final class FakeRouter implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One request: the stage ids of its batch (empty for a heartbeat), its token, our answer, and when it came. */
    record Request(String path, List<Integer> stageIds, String authorization, int status, JsonNode body, long atMs) {
    }

    private final HttpServer server;
    private final List<Request> requests = new ArrayList<>();
    private volatile ToIntFunction<Request> answer = request -> 200;
    private volatile String retryAfter;
    private final AtomicInteger connectionsToDrop = new AtomicInteger();

    FakeRouter() throws IOException {
        this(0);
    }

    FakeRouter(int port) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 0);
        server.createContext("/api/v1/ingest/", this::handle);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    int port() {
        return server.getAddress().getPort();
    }

    /** The status for each stage batch; heartbeats are always answered 200. */
    void answer(ToIntFunction<Request> answer) {
        this.answer = answer;
    }

    /** The Retry-After header of every answer that is not a 2xx; null: none. */
    void retryAfter(String value) {
        this.retryAfter = value;
    }

    /** Close the next n connections without an answer, as a router does with an idle keep-alive connection. */
    void dropConnections(int n) {
        connectionsToDrop.set(n);
    }

    private void handle(HttpExchange exchange) throws IOException {
        byte[] bytes = exchange.getRequestBody().readAllBytes();
        if (connectionsToDrop.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            exchange.close();  // no status line: the client reads no bytes at all
            return;
        }
        JsonNode body = JSON.readTree(bytes);
        List<Integer> stageIds = new ArrayList<>();
        body.path("stages").forEach(stage -> stageIds.add(stage.get("stage_id").asInt()));
        String path = exchange.getRequestURI().getPath();
        String authorization = exchange.getRequestHeaders().getFirst("Authorization");
        long atMs = System.currentTimeMillis();
        Request request = new Request(path, stageIds, authorization, 0, body, atMs);
        int status = path.endsWith("/stages") ? answer.applyAsInt(request) : 200;
        synchronized (requests) {
            requests.add(new Request(path, stageIds, authorization, status, body, atMs));
        }
        byte[] reply = (status / 100 == 2 ? "{\"ok\": true}" : "{\"detail\": \"refused by the test\"}")
                .getBytes(StandardCharsets.UTF_8);
        String after = retryAfter;
        if (status / 100 != 2 && after != null) {
            exchange.getResponseHeaders().set("Retry-After", after);
        }
        exchange.sendResponseHeaders(status, reply.length);
        exchange.getResponseBody().write(reply);
        exchange.close();
    }

    List<Request> requests() {
        synchronized (requests) {
            return new ArrayList<>(requests);
        }
    }

    List<Request> heartbeats() {
        return requests().stream().filter(request -> request.path().endsWith("/heartbeat")).toList();
    }

    /** How many times a batch holding this stage was answered with this status. */
    long answered(int stageId, int status) {
        return requests().stream()
                .filter(request -> request.stageIds().contains(stageId) && request.status() == status).count();
    }

    boolean stored(int stageId) {
        return requests().stream()
                .anyMatch(request -> request.stageIds().contains(stageId) && request.status() / 100 == 2);
    }

    /** Position of the first request that stored this stage, or of the last one refusing it with a status. */
    int firstStored(int stageId) {
        List<Request> all = requests();
        for (int i = 0; i < all.size(); i++) {
            if (all.get(i).stageIds().contains(stageId) && all.get(i).status() / 100 == 2) {
                return i;
            }
        }
        return -1;
    }

    /** The batches holding this stage, in order. */
    List<Request> batchesWith(int stageId) {
        return requests().stream().filter(request -> request.stageIds().contains(stageId)).toList();
    }

    int lastAnswered(int stageId, int status) {
        List<Request> all = requests();
        for (int i = all.size() - 1; i >= 0; i--) {
            if (all.get(i).stageIds().contains(stageId) && all.get(i).status() == status) {
                return i;
            }
        }
        return -1;
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
