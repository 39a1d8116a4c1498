# syntax=docker/dockerfile:1
# The router service (`spark-router serve`: FastAPI on uvicorn workers, with the router's read timeouts and
# connection limit) as a non-root user.
# Build from the repository root:
#   docker build -f docker/router.Dockerfile -t spark-connect-router/router:0.1.0 .
# The same install step as `make install`, without the client/dev extras: pip install ".[service]".

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service/ service/
COPY client_runtime/ client_runtime/
COPY airflow_plugins/ airflow_plugins/
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check ".[service]"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="spark-connect-router" \
      org.opencontainers.image.description="Spark Connect Router: the routing service" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 router \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/spark-router --create-home --shell /usr/sbin/nologin router
COPY --from=build /opt/venv /opt/venv
# SQLite (the default database) and the listener spool live under the state dir; mount a volume there.
# WEB_CONCURRENCY is `spark-router serve`'s --workers default: 2 workers, as in production (see README). The
# timeouts and the connection limit are settings (SPARK_ROUTER_HEADER_READ_TIMEOUT_S, SPARK_ROUTER_BODY_READ_TIMEOUT_S,
# SPARK_ROUTER_MAX_CONNECTIONS: docs/operator-guide.md); every worker has them.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SPARK_ROUTER_STATE_DIR=/var/lib/spark-router \
    SPARK_ROUTER_HOST=0.0.0.0 \
    SPARK_ROUTER_PORT=8765 \
    WEB_CONCURRENCY=2
WORKDIR /var/lib/spark-router
USER 10001:10001
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status != 200)"]
# It migrates the database once before the workers start; on PostgreSQL an advisory lock lets one replica at a
# time do it.
CMD ["spark-router", "serve", "--host", "0.0.0.0", "--port", "8765"]
