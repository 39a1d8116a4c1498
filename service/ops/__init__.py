"""Operations: the local Connect server (connect_server), drained restarts (restart), the dashboard's queries
(dashboard_queries), Prometheus metrics and Sentry hooks (observability)."""
