"""Example DAGs of Spark Connect Router: copy them into your DAGs folder (or point the DAGs folder here)."""
