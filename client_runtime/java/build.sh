#!/usr/bin/env bash
# Builds client_runtime/java/build/spark-router-session.jar, the session helper of JVM apps
# (io.sparkrouter.session.RouterSession), with javac against Spark's API jars only (no Maven needed): it must
# load in a Connect client, where Spark's classic SQL implementation is absent.
# Skips the build when the jar is newer than every source file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
jar="$here/build/spark-router-session.jar"
sources=$(find "$here/src/main/java" -name '*.java' | sort)

javac="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
if ! version=$("$javac" -version 2>&1) || [[ "$version" != "javac 17."* ]]; then
  echo "client_runtime/java/build.sh: a JDK 17 javac is needed (found: ${version:-none}); set JAVA_HOME or install openjdk-17-jdk-headless" >&2
  exit 1
fi
if [ -z "${SPARK_HOME:-}" ]; then
  python="${PYTHON:-$repo/.venv/bin/python}"
  SPARK_HOME=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null) || {
    echo "client_runtime/java/build.sh: pyspark is not installed in $python; run 'make install' first" >&2; exit 1; }
fi
api_jars=$(find "$SPARK_HOME/jars" -maxdepth 1 \( -name 'spark-sql-api_*.jar' -o -name 'scala-library-*.jar' \
  -o -name 'spark-common-utils_*.jar' \) | sort | paste -sd:)
if [ -z "$api_jars" ]; then
  echo "client_runtime/java/build.sh: no Spark API jars in $SPARK_HOME/jars" >&2
  exit 1
fi

if [ -f "$jar" ] && [ -z "$(find "$here/src" -newer "$jar" -name '*.java')" ]; then
  exit 0
fi
classes="$here/build/classes"
rm -rf "$classes"
mkdir -p "$classes"
# shellcheck disable=SC2086
"$javac" --release 17 -Xlint:deprecation -nowarn -d "$classes" -cp "$api_jars" $sources
"${JAVA_HOME:+$JAVA_HOME/bin/}jar" --create --file "$jar" -C "$classes" .
echo "built $jar"
