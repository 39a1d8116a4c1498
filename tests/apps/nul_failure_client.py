"""A Connect client whose job fails with a NUL byte in its error (a Python UDF raising
ValueError("bad\\x00byte")), which then ends normally: the failed stage's failure reason carries the NUL,
which PostgreSQL text cannot hold. Usage: nul_failure_client.py URL APP_ID RUN_ID."""

import sys

from pyspark.sql import functions as F

from client_runtime.session import connect_session

url, app_id, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
spark = connect_session(url, {"spark.router.appId": app_id, "spark.router.runId": run_id,
                              "spark.sql.adaptive.enabled": "false"})


@F.udf("long")
def poison(x):
    raise ValueError("bad\x00byte")


try:
    try:
        spark.range(0, 10, 1, 2).select(poison("id").alias("p")).collect()
    except Exception as exc:  # noqa: BLE001 - the failure is the point
        print(f"{app_id} {run_id}: failed as meant to ({type(exc).__name__}, NUL in message: "
              f"{chr(0) in str(exc)})")
    else:
        raise SystemExit("the job should have failed")
finally:
    spark.stop()
