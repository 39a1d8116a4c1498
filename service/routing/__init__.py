"""Step 3: routing. The policy's knobs and the policy in force (policy), the pure rules over an app's
aggregates (rules), deciding and storing batches of decisions (decider, decision_store), and what a candidate
policy would change (simulate)."""
