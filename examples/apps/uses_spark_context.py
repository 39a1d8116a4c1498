"""An app that uses the RDD API through sparkContext: it cannot run on Spark Connect, and falls back to
a separate application (or goes there directly once `spark-router check` has flagged it)."""

from client_runtime import get_session

spark = get_session("uses_spark_context")
numbers = spark.sparkContext.parallelize(range(1000), 4)
print("RESULT", numbers.map(lambda x: x * x).sum())
spark.stop()
