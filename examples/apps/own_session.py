"""An app that builds its session itself, without the router's session factory. The launcher still runs it
in either mode: SPARK_REMOTE (Connect) or spark-submit confs (standalone) carry the app and run ids."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("own_session").getOrCreate()
counts = spark.range(0, 10_000, 1, 2).selectExpr("id % 3 AS k").groupBy("k").count().orderBy("k")
print("RESULT", counts.collect())
spark.stop()
