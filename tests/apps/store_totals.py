"""Totals per store from a CSV given by a path relative to where the job runs (default data/orders.csv)."""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("store_totals").getOrCreate()
orders = spark.read.csv(sys.argv[1] if len(sys.argv) > 1 else "data/orders.csv", header=True,
                        inferSchema=True)
totals = orders.groupBy("store").agg(F.sum("amount").alias("total")).orderBy("store").collect()
print("RESULT", [(row["store"], row["total"]) for row in totals])
spark.stop()
