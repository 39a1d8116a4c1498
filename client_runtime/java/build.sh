#!/usr/bin/env bash
# The project's one Java build: javac against pyspark's own jars, then jar (no Maven needed).
#   client_runtime/java/build.sh [session]  client_runtime/java/build/spark-router-session.jar, the session helper of
#                                           JVM apps (io.sparkrouter.session.RouterSession), against Spark's API jars
#                                           only: it must load in a Connect client, where Spark's classic SQL
#                                           implementation is absent
#   client_runtime/java/build.sh listener   listener/build/spark-router-listener.jar, against all of Spark's jars
# Several targets may be named; none means session. A jar newer than every source file of its target is kept.
# SPARK_HOME: default the pyspark of $PYTHON (.venv/bin/python).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
me="client_runtime/java/build.sh"

javac="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
if ! version=$("$javac" -version 2>&1) || [[ "$version" != "javac 17."* ]]; then
  echo "$me: a JDK 17 javac is needed (found: ${version:-none}); set JAVA_HOME or install openjdk-17-jdk-headless" >&2
  exit 1
fi
if [ -z "${SPARK_HOME:-}" ]; then
  python="${PYTHON:-$repo/.venv/bin/python}"
  SPARK_HOME=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null) || {
    echo "$me: pyspark is not installed in $python; run 'make install' first" >&2; exit 1; }
fi
if [ ! -d "$SPARK_HOME/jars" ]; then
  echo "$me: no jars in $SPARK_HOME/jars" >&2
  exit 1
fi

# build SOURCE_ROOT JAR CLASSPATH: the classes of SOURCE_ROOT/src/main/java into JAR.
build() {
  local root="$1" jar="$2" classpath="$3" classes sources
  if [ -f "$jar" ] && [ -z "$(find "$root/src/main" -newer "$jar" -name '*.java')" ]; then
    return 0
  fi
  sources=$(find "$root/src/main/java" -name '*.java' | sort)
  classes="$(dirname "$jar")/classes"
  rm -rf "$classes"
  mkdir -p "$classes"
  # shellcheck disable=SC2086
  "$javac" --release 17 -Xlint:deprecation -nowarn -d "$classes" -cp "$classpath" $sources
  "${JAVA_HOME:+$JAVA_HOME/bin/}jar" --create --file "$jar" -C "$classes" .
  echo "built $jar"
}

for target in "${@:-session}"; do
  case "$target" in
    session)
      api_jars=$(find "$SPARK_HOME/jars" -maxdepth 1 \( -name 'spark-sql-api_*.jar' -o -name 'scala-library-*.jar' \
        -o -name 'spark-common-utils_*.jar' \) | sort | paste -sd:)
      if [ -z "$api_jars" ]; then
        echo "$me: no Spark API jars in $SPARK_HOME/jars" >&2
        exit 1
      fi
      build "$repo/client_runtime/java" "$repo/client_runtime/java/build/spark-router-session.jar" "$api_jars"
      ;;
    listener)
      build "$repo/listener" "$repo/listener/build/spark-router-listener.jar" "$SPARK_HOME/jars/*"
      ;;
    *)
      echo "$me: unknown target '$target' (session, listener)" >&2
      exit 2
      ;;
  esac
done
