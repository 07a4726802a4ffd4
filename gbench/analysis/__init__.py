"""Analysis: statistics over seeds (stats, sequential), comparisons between settings, claims checked against the
numbers, and cost estimates."""
