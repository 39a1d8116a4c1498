#!/usr/bin/env bash
# Entrypoint of the thin client image: one run of one application, through the launcher.
#
#   MAIN_APPLICATION_FILE_S3_PATH  where the application is, e.g. s3://bucket/apps/daily_report.py (as in
#                                  the article's client image). `spark-router run` fetches s3:// URIs with
#                                  boto3 (credentials: the usual AWS_* variables or the pod's IAM role);
#                                  a local path works too.
#   MAIN_CLASS                     for a jar (the jvm-client target): the class to run, e.g. com.acme.Main
#                                  (default: the jar's Main-Class)
#   SPARK_ROUTER_APP_ID            the application's stable id in the run history
#   SPARK_ROUTER_URL, SPARK_ROUTER_API_TOKEN, SPARK_ROUTER_CONNECT_URL   where the router and the server are
# Arguments are passed on to the application.
set -euo pipefail

: "${MAIN_APPLICATION_FILE_S3_PATH:?set MAIN_APPLICATION_FILE_S3_PATH to the application (s3://bucket/key.py)}"
: "${SPARK_ROUTER_APP_ID:?set SPARK_ROUTER_APP_ID to the application id}"

main_class=()
if [ -n "${MAIN_CLASS:-}" ]; then
  main_class=(--class "$MAIN_CLASS")
fi
exec spark-router run --app-id "$SPARK_ROUTER_APP_ID" "${main_class[@]}" "$MAIN_APPLICATION_FILE_S3_PATH" "$@"
