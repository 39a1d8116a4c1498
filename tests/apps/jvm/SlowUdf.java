package io.sparkrouter.tests;

import static org.apache.spark.sql.functions.callUDF;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.sum;

import io.sparkrouter.session.RouterSession;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataTypes;

/**
 * The JVM twin of tests/apps/slow_udf.py: a Connect-ready app whose job takes about SECONDS seconds (a Java UDF
 * that sleeps a second per row, 3 * SECONDS rows over 3 partitions). Prints STARTED when its job begins.
 */
public final class SlowUdf {
    private SlowUdf() {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        SparkSession spark = RouterSession.builder().appName("slow_udf_jvm").getOrCreate();
        spark.udf().register("slow_square", (UDF1<Long, Long>) x -> {
            Thread.sleep(1000);
            return x * x;
        }, DataTypes.LongType);
        System.out.println("STARTED");
        long total = spark.range(0, 3L * seconds, 1, 3).select(callUDF("slow_square", col("id")).alias("sq"))
            .agg(sum("sq")).first().getLong(0);
        System.out.println("RESULT " + total);
        spark.stop();
    }
}
