"""A light app: a small aggregation. Runs unchanged on the shared Connect server or standalone.

Prints its result as one JSON line, so both modes can be compared."""

import json
import sys

from pyspark.sql import functions as F

from client_runtime import get_session

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
spark = get_session("light_aggregation")
orders = spark.range(0, rows, 1, 4).select(
    (F.col("id") % 7).alias("store"), (F.col("id") % 100).alias("amount"))
totals = orders.groupBy("store").agg(F.count("*").alias("orders"), F.sum("amount").alias("revenue"))
result = [row.asDict() for row in totals.orderBy("store").collect()]
print("RESULT " + json.dumps(result, sort_keys=True))
spark.stop()
