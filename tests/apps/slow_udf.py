"""A Connect-ready app whose job takes about SECONDS seconds (a Python UDF that sleeps), so that a test can
kill the server under it. Prints STARTED when its job begins."""

import sys
import time

from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from client_runtime import get_session

seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
spark = get_session("slow_udf")


@F.udf(LongType())
def slow_square(x):
    time.sleep(1)
    return x * x


print("STARTED", flush=True)
squares = spark.range(0, 2 * seconds, 1, 2).select(slow_square("id").alias("sq"))
total = squares.agg(F.sum("sq")).collect()[0][0]
print("RESULT", total)
spark.stop()
