"""Step 2: run history. Apps and their rows (apps), a run's lifecycle and the per-app aggregates it keeps
current (lifecycle), and the reads (queries)."""
