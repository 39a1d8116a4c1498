"""An app whose own code fails: the run fails in any mode, with the app's error in the output."""

from client_runtime import get_session

spark = get_session("failing_app")
count = spark.range(10).count()
raise ValueError(f"bad input: expected 11 rows, found {count}")
