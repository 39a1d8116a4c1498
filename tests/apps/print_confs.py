"""Prints the session's value of each Spark conf named in its arguments (CONF key=value), so that a test sees
which confs reached the app's session."""

import sys

from client_runtime import get_session

spark = get_session("print_confs")
for key in sys.argv[1:]:
    print(f"CONF {key}={spark.conf.get(key, '<unset>')}", flush=True)
spark.stop()
