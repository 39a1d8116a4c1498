# syntax=docker/dockerfile:1
# The shared Spark Connect server, on Kubernetes: Spark 4.3 as shipped in the pyspark 4.3.0 package, a JDK 17
# runtime, the router's listener, and the server settings of docs/deployment.md. The same image runs the
# server's executor pods (entrypoint argument `executor`) and standalone runs (`spark-router run ...`).
# Build from the repository root:
#   docker build -f docker/connect-server.Dockerfile -t spark-connect-router/connect-server:0.1.0 .

# ---- Spark (pyspark 4.3.0 is a source archive: pip builds it, ~30 s) and the project with its client extra.
FROM python:3.11-slim-bookworm AS spark
# Its own layer, before the project's files, so that a code change does not rebuild Spark.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "pyspark==4.3.0"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
COPY client_runtime/ client_runtime/
COPY airflow_plugins/ airflow_plugins/
# pyspark[connect]==4.3.0 of the client extra is the pyspark above; the extra adds pandas<3, pyarrow, grpcio, boto3.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check ".[client]"

# ---- The listener jar, built by the same script as `make listener` (javac against pyspark's jars; the script is
# in client_runtime/, copied above).
FROM spark AS listener
# DL3008: see the runtime stage. The man1 folder: the JDK's post-install links man pages into it, and slim
# images drop /usr/share/man.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/*
COPY listener/ listener/
RUN SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark client_runtime/java/build.sh listener \
    && test -s listener/build/spark-router-listener.jar

# ---- Runtime.
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="spark-connect-router-connect-server" \
      org.opencontainers.image.description="Spark 4.3 Connect server with the Spark Connect Router listener" \
      org.opencontainers.image.licenses="Apache-2.0"
# DL3008: the Debian release is pinned by the base image tag; the JRE's security updates must come in on
# every rebuild, which exact version pins would block (Debian drops superseded versions from its mirror).
# procps: Spark's scripts call ps. tini: PID 1 that forwards SIGTERM to the JVM and reaps Python workers.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 /opt/spark-router \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java \
    && groupadd --gid 185 spark \
    && useradd --uid 185 --gid 185 --home-dir /opt/spark-router/work --create-home --shell /usr/sbin/nologin spark \
    && mkdir -p /var/lib/spark-router/spool /tmp/spark-local \
    && chown -R 185:185 /var/lib/spark-router /tmp/spark-local
COPY --from=spark /opt/venv /opt/venv
# Outside pyspark/jars, which a reinstall of pyspark wipes.
COPY --from=listener /src/listener/build/spark-router-listener.jar /opt/spark-router/jars/spark-router-listener.jar
# The server's own settings and FAIR pools (one file each, shared with the local server and the chart), then this
# image's.
COPY service/ops/connect-server.conf service/ops/fairscheduler.xml docker/connect-server/spark-defaults.conf /opt/spark-router/conf/
COPY --chmod=0755 docker/connect-server/entrypoint.sh /opt/spark-router/bin/entrypoint.sh
ENV JAVA_HOME=/opt/java \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    SPARK_CONF_DIR=/opt/spark-router/conf \
    SPARK_LOCAL_DIRS=/tmp/spark-local \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    PATH=/opt/venv/bin:/opt/java/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SPARK_ROUTER_STATE_DIR=/var/lib/spark-router
WORKDIR /opt/spark-router/work
USER 185:185
# 15002 Spark Connect (gRPC), 4040 Spark UI and REST API (keep it internal), 7078/7079 driver RPC and block
# manager (the executors connect back to them).
EXPOSE 15002 4040 7078 7079
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 15002), timeout=4).close()"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/spark-router/bin/entrypoint.sh"]
CMD ["server"]
