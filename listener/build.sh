#!/usr/bin/env bash
# Builds listener/build/spark-router-listener.jar with javac against pyspark's own jars (no Maven needed).
# Skips the build when the jar is newer than every source file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
jar="$here/build/spark-router-listener.jar"
sources=$(find "$here/src/main/java" -name '*.java' | sort)

javac="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
if ! version=$("$javac" -version 2>&1) || [[ "$version" != "javac 17."* ]]; then
  echo "listener/build.sh: a JDK 17 javac is needed (found: ${version:-none}); set JAVA_HOME or install openjdk-17-jdk-headless" >&2
  exit 1
fi
if [ -z "${SPARK_HOME:-}" ]; then
  python="${PYTHON:-$repo/.venv/bin/python}"
  SPARK_HOME=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null) || {
    echo "listener/build.sh: pyspark is not installed in $python; run 'make install' first" >&2; exit 1; }
fi
if [ ! -d "$SPARK_HOME/jars" ]; then
  echo "listener/build.sh: no jars in $SPARK_HOME/jars" >&2
  exit 1
fi

if [ -f "$jar" ] && [ -z "$(find "$here/src/main" -newer "$jar" -name '*.java')" ]; then
  exit 0
fi
classes="$here/build/classes"
rm -rf "$classes"
mkdir -p "$classes"
# shellcheck disable=SC2086
"$javac" --release 17 -Xlint:deprecation -nowarn -d "$classes" -cp "$SPARK_HOME/jars/*" $sources
"${JAVA_HOME:+$JAVA_HOME/bin/}jar" --create --file "$jar" -C "$classes" .
echo "built $jar"
