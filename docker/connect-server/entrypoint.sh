#!/usr/bin/env bash
# Entrypoint of the connect-server image (run under tini).
#
#   server [SPARK-SUBMIT ARGS...]  (default) the Spark Connect server, i.e. the driver, in client mode.
#   executor                       an executor pod: Spark on Kubernetes starts the executors of the server
#                                  with the server's image and this argument (same contract as the
#                                  entrypoint of Spark's own images).
#   anything else                  run as given, e.g. `spark-router run --app-id ID APP` or `bash`.
#
# Server environment (the Helm chart sets these):
#   SPARK_MASTER               default k8s://https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT in a
#                              pod, local[*] elsewhere
#   POD_IP, POD_NAME, POD_NAMESPACE   from the downward API: spark.driver.host (executors connect back to
#                              it), spark.kubernetes.driver.pod.name (executor pods are owned by the server
#                              pod and go away with it), spark.kubernetes.namespace
#   SPARK_EXECUTOR_IMAGE       spark.kubernetes.container.image (normally this image)
#   SPARK_ROUTER_INGEST_TOKEN  the listener's bearer token (spark.router.listener.token)
#   SPARK_ROUTER_LISTENER_SERVER_ID, SPARK_ROUTER_LISTENER_CONNECT_URL, SPARK_EXECUTOR_POD_NAME_PREFIX
#                              one server of a pool: the id it reports under, the Connect URL the router hands
#                              its clients, its executor pods' name prefix (over the shared spark-defaults.conf)
#   SPARK_CONNECT_AUTHENTICATE_TOKEN  read by Spark itself: clients must send this token
# The secrets go into a properties file readable only by this user, never onto the command line.
set -euo pipefail

conf_dir="${SPARK_CONF_DIR:-$SPARK_HOME/conf}"

# Java properties escaping for a value: backslashes only (keys and values here have no line breaks).
prop() {
  local value="${2//\\/\\\\}"
  printf '%s %s\n' "$1" "$value"
}

run_server() {
  local master="${SPARK_MASTER:-}"
  if [[ -z "$master" ]]; then
    if [[ -n "${KUBERNETES_SERVICE_HOST:-}" ]]; then
      master="k8s://https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT:-443}"
    else
      master="local[*]"
    fi
  fi
  local runtime_dir="${SPARK_ROUTER_RUNTIME_DIR:-${TMPDIR:-/tmp}/spark-router}"
  local conf_file="$runtime_dir/spark-connect.conf"
  mkdir -p "$runtime_dir"
  umask 077
  {
    # The server's own settings (shared with the local server and the chart), then this deployment's: in a
    # Java properties file the last value of a key wins. The chart's conf dir has only spark-defaults.conf,
    # rendered from both.
    local file
    for file in "$conf_dir/connect-server.conf" "$conf_dir/spark-defaults.conf"; do
      if [[ -f "$file" ]]; then
        cat "$file"
        echo
      fi
    done
    echo "# Added by entrypoint.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    prop spark.master "$master"
    if [[ -n "${POD_IP:-}" ]]; then prop spark.driver.host "$POD_IP"; fi
    if [[ -n "${POD_NAME:-}" ]]; then prop spark.kubernetes.driver.pod.name "$POD_NAME"; fi
    if [[ -n "${POD_NAMESPACE:-}" ]]; then prop spark.kubernetes.namespace "$POD_NAMESPACE"; fi
    if [[ -n "${SPARK_EXECUTOR_IMAGE:-}" ]]; then prop spark.kubernetes.container.image "$SPARK_EXECUTOR_IMAGE"; fi
    if [[ -n "${SPARK_ROUTER_LISTENER_SERVER_ID:-}" ]]; then
      prop spark.router.listener.serverId "$SPARK_ROUTER_LISTENER_SERVER_ID"
    fi
    if [[ -n "${SPARK_ROUTER_LISTENER_CONNECT_URL:-}" ]]; then
      prop spark.router.listener.connectUrl "$SPARK_ROUTER_LISTENER_CONNECT_URL"
    fi
    if [[ -n "${SPARK_EXECUTOR_POD_NAME_PREFIX:-}" ]]; then
      prop spark.kubernetes.executor.podNamePrefix "$SPARK_EXECUTOR_POD_NAME_PREFIX"
    fi
    if [[ -n "${SPARK_ROUTER_INGEST_TOKEN:-}" ]]; then
      prop spark.router.listener.token "$SPARK_ROUTER_INGEST_TOKEN"
    fi
  } > "$conf_file"
  umask 022
  if [[ "$master" == k8s://* ]] && ! grep -q '^spark\.kubernetes\.container\.image[[:space:]=:]' "$conf_file"; then
    echo "entrypoint: no executor image (set SPARK_EXECUTOR_IMAGE or spark.kubernetes.container.image)" >&2
    exit 64
  fi
  echo "entrypoint: Spark Connect server, master $master, conf $conf_file" >&2
  # spark-submit rather than sbin/start-connect-server.sh: the JVM stays in the foreground under tini and
  # gets the pod's SIGTERM directly.
  exec "$SPARK_HOME/bin/spark-submit" \
    --class org.apache.spark.sql.connect.service.SparkConnectServer \
    --name "${SPARK_APP_NAME:-Spark Connect server}" \
    --properties-file "$conf_file" \
    "$@"
}

run_executor() {
  # The variables below are set by Spark's driver on every executor pod it creates.
  local java_opts=() classpath="${SPARK_CLASSPATH:-}"
  local name
  while IFS='=' read -r name _; do
    java_opts+=("${!name}")
  done < <(env | grep -o '^SPARK_JAVA_OPT_[0-9]*=' | sort -t_ -k4 -n)
  classpath="${classpath:+$classpath:}$conf_dir:$SPARK_HOME/jars/*"
  if [[ -n "${SPARK_EXTRA_CLASSPATH:-}" ]]; then classpath="$classpath:$SPARK_EXTRA_CLASSPATH"; fi
  exec "$JAVA_HOME/bin/java" \
    "${java_opts[@]}" \
    "-Xms${SPARK_EXECUTOR_MEMORY}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
    -cp "$classpath" \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url "$SPARK_DRIVER_URL" \
    --executor-id "$SPARK_EXECUTOR_ID" \
    --cores "$SPARK_EXECUTOR_CORES" \
    --app-id "$SPARK_APPLICATION_ID" \
    --hostname "$SPARK_EXECUTOR_POD_IP" \
    --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
    --podName "$SPARK_EXECUTOR_POD_NAME"
}

case "${1:-server}" in
  server)
    shift || true
    run_server "$@"
    ;;
  executor)
    run_executor
    ;;
  *)
    exec "$@"
    ;;
esac
