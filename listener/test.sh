#!/usr/bin/env bash
# Builds the listener jar (client_runtime/java/build.sh listener), compiles listener/src/test/java against it and
# pyspark's jars, and runs the tests with plain java (no test framework: TestRunner, which finds every *Test class
# it was compiled with). Arguments select tests by "Class.method" substring.
# The last line of output is "N passed, N failed"; the exit status is non-zero on a failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
jar="$here/build/spark-router-listener.jar"

"$repo/client_runtime/java/build.sh" listener
if [ -z "${SPARK_HOME:-}" ]; then
  python="${PYTHON:-$repo/.venv/bin/python}"
  SPARK_HOME=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
fi
bin="${JAVA_HOME:+$JAVA_HOME/bin/}"
classes="$here/build/test-classes"
rm -rf "$classes"
mkdir -p "$classes"
# shellcheck disable=SC2046
"${bin}javac" --release 17 -nowarn -d "$classes" -cp "$jar:$SPARK_HOME/jars/*" \
  $(find "$here/src/test/java" -name '*.java' | sort)
# Short-lived JVM: C1 only starts faster; log4j2-test.properties comes from src/test/resources.
exec "${bin}java" -XX:TieredStopAtLevel=1 -Xmx512m -Dsparkrouter.repo="$repo" \
  -cp "$classes:$here/src/test/resources:$jar:$SPARK_HOME/jars/*" io.sparkrouter.listener.TestRunner "$@"
