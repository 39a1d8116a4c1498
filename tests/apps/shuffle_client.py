"""A Connect client that runs a groupBy with an exactly known shuffle: 4 map partitions x KEYS keys
write exactly 4*KEYS shuffle records. Usage: shuffle_client.py URL APP_ID RUN_ID KEYS [ROUNDS]."""

import sys

from client_runtime.session import connect_session

url, app_id, run_id, keys = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 1
spark = connect_session(url, {"spark.router.appId": app_id, "spark.router.runId": run_id,
                              "spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "3"})
try:
    for _ in range(rounds):
        rows = spark.range(0, 200_000, 1, 4).selectExpr(f"id % {keys} AS k").groupBy("k").count().collect()
        assert len(rows) == keys, rows
    print(f"{app_id} {run_id}: ok")
finally:
    spark.stop()
