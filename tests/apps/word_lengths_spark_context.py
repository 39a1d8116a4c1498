"""Word lengths with the RDD API, written for spark-submit: it builds its own SparkContext. On Spark Connect
(SPARK_REMOTE set, no master) it fails with [MASTER_URL_NOT_SET]."""

from pyspark import SparkContext

sc = SparkContext(appName="word_lengths")
words = sc.parallelize(["spark", "connect", "router", "fallback"] * 250, 4)
print("RESULT", words.map(len).sum())
sc.stop()
