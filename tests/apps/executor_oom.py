"""A classic (spark-submit) app whose one task holds 4 x MIB MiB of strings in its executor's heap at once
(two repeats and their concatenation): out of memory in 512m executors, fine in 1g ones. One try per task
(spark.task.maxFailures), so that the failure is quick. Argument: MIB (default 112)."""

import sys

from pyspark.sql import SparkSession

size = int(sys.argv[1] if len(sys.argv) > 1 else 112) << 20
spark = SparkSession.builder.config("spark.task.maxFailures", "1").getOrCreate()
# From a column, so that the optimizer cannot fold it into a constant on the driver.
held = f"length(concat(repeat(cast(id AS string), {size}), repeat(cast(id + 1 AS string), {size}))) AS n"
row = spark.range(0, 1, 1, 1).selectExpr(held).first()
assert row is not None and row["n"] == 2 * size, row
print(f"held {4 * size >> 20} MiB in one task")
spark.stop()
