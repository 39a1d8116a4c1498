"""Step 1 of the loop: storing what the listeners send, stage attempts exactly once (stages) and
heartbeats."""
