# syntax=docker/dockerfile:1
# The thin client runtime: runs one application on the shared Spark Connect server through `spark-router run`.
# No JVM and no Spark jars: pyspark-client (the pure-Python Connect client) + the project (core) + the
# rest of its client extra (docker/client/requirements.txt). A run the router sends to a separate Spark
# application needs Spark: start those with the connect-server image, which has both (docs/deployment.md).
# JVM apps (a jar, docs/jvm.md) need more: a JRE, the JVM Connect client and the Spark jars it uses, and the
# session helper. The target jvm-client adds them to this image.
# Build from the repository root:
#   docker build -f docker/client.Dockerfile -t spark-connect-router/client:0.1.0 .
#   docker build -f docker/client.Dockerfile --target jvm-client -t spark-connect-router/jvm-client:0.1.0 .

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY docker/client/requirements.txt docker/client/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r docker/client/requirements.txt
COPY pyproject.toml README.md ./
COPY client_runtime/ client_runtime/
COPY airflow_plugins/ airflow_plugins/
# The project without extras: its client extra would pull pyspark 4.3.0 with its 400 MB of jars.
# The import check runs as a module (-m), not `python -c`: pyspark.sql.connect takes a main module without a
# file for a doctest run and looks for a SPARK_HOME. -P: the installed package, not /src.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/venv/bin/python -P -m client_runtime.session

# ---- For jvm-client: Spark's jars a JVM Connect client uses, and the session helper built against them.
FROM python:3.11-slim-bookworm AS jvm-jars
# DL3008: see connect-server.Dockerfile. The man1 folder: the JDK's post-install links man pages into it.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/spark \
    && /opt/spark/bin/pip install --no-cache-dir --disable-pip-version-check "pyspark==4.3.0"
WORKDIR /src
COPY client_runtime/java/ client_runtime/java/
# What Spark's own launcher gives a Connect (remote) shell, as client_runtime/jvm.py does: the JVM Connect client
# and Spark's jars without the classic SQL implementation and the Connect server.
RUN SPARK_HOME=/opt/spark/lib/python3.11/site-packages/pyspark client_runtime/java/build.sh session \
    && mkdir -p /opt/spark-router/jars/connect-repl \
    && cp client_runtime/java/build/spark-router-session.jar /opt/spark-router/ \
    && cp /opt/spark/lib/python3.11/site-packages/pyspark/jars/connect-repl/spark-connect-client-jvm_*.jar \
          /opt/spark-router/jars/connect-repl/ \
    && find /opt/spark/lib/python3.11/site-packages/pyspark/jars -maxdepth 1 -name '*.jar' \
         ! -name 'spark-sql_*' ! -name 'spark-connect_*' ! -name 'spark-sql-api_*' ! -name 'spark-connect-common_*' \
         -exec cp {} /opt/spark-router/jars/ \;

# ---- The thin client (the default target, see the end).
FROM python:3.11-slim-bookworm AS client
LABEL org.opencontainers.image.title="spark-connect-router-client" \
      org.opencontainers.image.description="Thin Spark Connect client runtime of Spark Connect Router" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 docker/client/entrypoint.sh /usr/local/bin/spark-router-entrypoint
# SPARK_CONNECT_RELEASE_SESSION_ON_EXIT: a client that exits without spark.stop() closes its server session
# instead of leaving it open for an hour.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SPARK_CONNECT_RELEASE_SESSION_ON_EXIT=true \
    SPARK_ROUTER_STATE_DIR=/tmp/spark-router
WORKDIR /home/app
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/spark-router-entrypoint"]

# ---- jvm-client: the thin client and what JVM apps run with on Spark Connect (`spark-router run --class`).
# Standalone runs of jars need spark-submit: the connect-server image, as for Python apps.
FROM client AS jvm-client
LABEL org.opencontainers.image.title="spark-connect-router-jvm-client" \
      org.opencontainers.image.description="Spark Connect client runtime of Spark Connect Router, for Python and JVM apps"
USER 0
# DL3008: see connect-server.Dockerfile.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java
COPY --from=jvm-jars /opt/spark-router /opt/spark-router
ENV JAVA_HOME=/opt/java \
    SPARK_ROUTER_JVM_JARS_DIR=/opt/spark-router/jars \
    SPARK_ROUTER_SESSION_JAR=/opt/spark-router/spark-router-session.jar
USER 10001:10001

# ---- The default target: the thin client.
FROM client
