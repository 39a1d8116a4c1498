package io.sparkrouter.examples;

import static org.apache.spark.sql.functions.callUDF;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.sum;

import io.sparkrouter.session.RouterSession;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataTypes;

/**
 * The light app of examples/apps/light_aggregation.py as a JVM app: one jar that runs on the shared Connect
 * server or standalone. Its order amounts come from a Java UDF, whose class the Connect server loads from this
 * jar (the session helper adds it to the session). Prints the same RESULT line as the Python app.
 */
public final class LightAggregation {
    private LightAggregation() {
    }

    public static void main(String[] args) {
        long rows = args.length > 0 ? Long.parseLong(args[0]) : 100_000L;
        SparkSession spark = RouterSession.builder().appName("light_aggregation").getOrCreate();
        spark.udf().register("amount_of", (UDF1<Long, Long>) id -> id % 100, DataTypes.LongType);
        List<Row> totals = spark.range(0, rows, 1, 4)
            .select(col("id").mod(7).alias("store"), callUDF("amount_of", col("id")).alias("amount"))
            .groupBy("store").agg(count("*").alias("orders"), sum("amount").alias("revenue"))
            .orderBy("store").collectAsList();
        String result = totals.stream()
            .map(row -> String.format("{\"orders\": %d, \"revenue\": %d, \"store\": %d}",
                row.getLong(1), row.getLong(2), row.getLong(0)))
            .collect(Collectors.joining(", ", "[", "]"));
        System.out.println("RESULT " + result);
        spark.stop();
    }
}
