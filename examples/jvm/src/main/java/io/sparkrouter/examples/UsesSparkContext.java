package io.sparkrouter.examples;

import io.sparkrouter.session.RouterSession;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * A JVM app that uses the RDD API through the SparkContext: it cannot run on Spark Connect. `spark-router check`
 * finds it in the jar's class files, so the app goes standalone without a Connect attempt (forced onto Connect,
 * it fails there and falls back). Prints the same RESULT line as examples/apps/uses_spark_context.py.
 */
public final class UsesSparkContext {
    private UsesSparkContext() {
    }

    public static void main(String[] args) {
        SparkSession spark = RouterSession.builder().appName("uses_spark_context").getOrCreate();
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Long> numbers = LongStream.range(0, 1000).boxed().collect(Collectors.toList());
        System.out.println("RESULT " + sc.parallelize(numbers, 4).map(x -> x * x).reduce(Long::sum));
        spark.stop();
    }
}
