#!/usr/bin/env bash
# Builds examples/jvm/build/spark-router-examples.jar, the example JVM apps, the way an app's own build would:
# javac against `spark-router classpath` (the session helper and Spark's API jars), into a jar that carries no
# Spark of its own. UsesSparkContext uses Spark's classic API, so it compiles against every Spark jar
# (`spark-router classpath --all`). `make demo` runs this; then, e.g.:
#   spark-router run --app-id demo.jvm --class io.sparkrouter.examples.LightAggregation \
#     examples/jvm/build/spark-router-examples.jar
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
sources="$here/src/main/java/io/sparkrouter/examples"
jar="$here/build/spark-router-examples.jar"
spark_router="${SPARK_ROUTER:-$repo/.venv/bin/spark-router}"
[ -x "$spark_router" ] || spark_router=spark-router
javac="${JAVA_HOME:+$JAVA_HOME/bin/}javac"

classes="$here/build/classes"
rm -rf "$classes"
mkdir -p "$classes"
"$javac" --release 17 -nowarn -d "$classes" -cp "$("$spark_router" classpath)" "$sources/LightAggregation.java"
"$javac" --release 17 -nowarn -d "$classes" -cp "$("$spark_router" classpath --all)" "$sources/UsesSparkContext.java"
"${JAVA_HOME:+$JAVA_HOME/bin/}jar" --create --file "$jar" -C "$classes" .
echo "built $jar"
