"""A Hive table, written and read back. A Connect server without Hive support refuses the CREATE TABLE
... STORED AS with [NOT_SUPPORTED_COMMAND_WITHOUT_HIVE_SUPPORT]; standalone, the metastore (Derby) and the
warehouse are made in the working directory."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("hive_orders").enableHiveSupport().getOrCreate()
spark.sql("DROP TABLE IF EXISTS orders")
spark.sql("CREATE TABLE orders (id INT, amount DOUBLE) STORED AS PARQUET")
spark.sql("INSERT INTO orders VALUES (1, 10.0), (2, 32.0)")
print("RESULT", spark.sql("SELECT sum(amount) AS total FROM orders").collect()[0]["total"])
spark.sql("DROP TABLE orders")
spark.stop()
