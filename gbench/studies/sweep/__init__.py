"""`gbench sweep`: suites, their plan, the workers' objective, progress, and `--seeds auto`'s rounds (adaptive)."""
