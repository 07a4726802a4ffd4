"""`gbench tune`: the search space, the tuning study and its trials."""
