"""A Connect client whose job spills: a window over whole partitions with tiny in-memory buffers.
Usage: spill_client.py URL APP_ID RUN_ID."""

import sys

from pyspark.sql import Window
from pyspark.sql import functions as F

from client_runtime.session import connect_session

url, app_id, run_id = sys.argv[1:4]
spark = connect_session(url, {"spark.router.appId": app_id, "spark.router.runId": run_id,
                              # Per-session SQL confs: buffer at most 10,000 rows in memory, then spill (about
                              # 20 spill files per partition: many more and merging them needs more heap than
                              # a small server has).
                              "spark.sql.windowExec.buffer.in.memory.threshold": "10000",
                              "spark.sql.windowExec.buffer.spill.threshold": "10000",
                              "spark.sql.shuffle.partitions": "2"})
try:
    whole_group = Window.partitionBy("g").orderBy("id").rowsBetween(Window.unboundedPreceding,
                                                                     Window.unboundedFollowing)
    df = spark.range(0, 400_000, 1, 2).selectExpr("id % 2 AS g", "id", "repeat('x', 40) AS pad")
    total = df.select(F.sum("id").over(whole_group).alias("s")).agg(F.max("s")).collect()[0][0]
    assert total == sum(range(1, 400_000, 2)), total
    print(f"{app_id} {run_id}: ok")
finally:
    spark.stop()
