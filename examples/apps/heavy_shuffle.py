"""A heavy app: a wide shuffle and a window over whole partitions that spills to disk. After a run or two
the router sends it standalone (its spill is over the threshold)."""

import sys

from pyspark.sql import Window
from pyspark.sql import functions as F

from client_runtime import get_session

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000
spark = get_session("heavy_shuffle")
# Small in-memory buffers make the window spill, as a much bigger input would on a real cluster.
spark.conf.set("spark.sql.windowExec.buffer.in.memory.threshold", "20000")
spark.conf.set("spark.sql.windowExec.buffer.spill.threshold", "20000")
spark.conf.set("spark.sql.shuffle.partitions", "4")
events = spark.range(0, rows, 1, 4).select(
    (F.col("id") % 4).alias("user"), F.col("id"), F.sha2(F.col("id").cast("string"), 256).alias("payload"))
whole_user = Window.partitionBy("user").orderBy("id").rowsBetween(Window.unboundedPreceding,
                                                                  Window.unboundedFollowing)
ranked = events.select("user", F.count("payload").over(whole_user).alias("events_of_user"))
result = ranked.groupBy("user").agg(F.max("events_of_user").alias("events")).orderBy("user").collect()
print("RESULT", [tuple(row) for row in result])
spark.stop()
