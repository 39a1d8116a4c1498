"""Is the die fair? A chi-squared goodness-of-fit test (pyspark.mllib) over face counts from a DataFrame.
Nothing in it names a SparkContext, so the compatibility check passes it; on Spark Connect the mllib helper
fails with [CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT]."""

from pyspark.mllib.linalg import Vectors
from pyspark.mllib.stat import Statistics
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("die_fairness").getOrCreate()
rolls = spark.range(6000).select(((F.col("id") * 7919) % 6 + 1).alias("face"))
counts = [row["count"] for row in rolls.groupBy("face").count().orderBy("face").collect()]
test = Statistics.chiSqTest(Vectors.dense(counts))
print("RESULT", counts, "p-value", round(test.pValue, 3))
spark.stop()
