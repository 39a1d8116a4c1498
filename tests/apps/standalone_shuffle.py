"""A classic (spark-submit) app with a known shuffle: 4 map partitions x 25 keys = 100 shuffle records."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
rows = spark.range(0, 100_000, 1, 4).selectExpr("id % 25 AS k").groupBy("k").count().collect()
assert len(rows) == 25
spark.stop()
