"""Results: one row per run (schema), the results folder
(store), records of runs and their tables (records, display)."""
