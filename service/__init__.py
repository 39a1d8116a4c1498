"""The router service, its packages in the order data flows through them:

ingest (what listeners send) → history (apps, runs, their aggregates) → routing (policy, rules, decisions)
→ api (HTTP routes). db holds the tables and migrations every step uses; ops the local Connect server,
restarts, the dashboard's queries and metrics. Public surface: ``service.app.create_app`` and the
router's commands of ``spark-router`` (``service.commands``; the entry point is ``client_runtime.cli``)."""
