# syntax=docker/dockerfile:1
# The thin client runtime: runs one application on the shared Spark Connect server through `spark-router run`.
# No JVM and no Spark jars: pyspark-client (the pure-Python Connect client) + the project (core) + the
# rest of its client extra (docker/client/requirements.txt). A run the router sends to a separate Spark
# application needs Spark: start those with the connect-server image, which has both (docs/deployment.md).
# Build from the repository root:
#   docker build -f docker/client.Dockerfile -t spark-connect-router/client:0.1.0 .

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY docker/client/requirements.txt docker/client/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r docker/client/requirements.txt
COPY pyproject.toml README.md ./
COPY service/ service/
COPY client_runtime/ client_runtime/
COPY airflow_plugins/ airflow_plugins/
# The project without extras: its client extra would pull pyspark 4.3.0 with its 400 MB of jars.
# The import check runs as a module (-m), not `python -c`: pyspark.sql.connect takes a main module without a
# file for a doctest run and looks for a SPARK_HOME. -P: the installed package, not /src.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/venv/bin/python -P -m client_runtime.session

FROM python:3.11-slim-bookworm
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
