"""Seeds trained as one batched population: the stacked modules (stack), their optimizer (adam),
the loop (loop), running a group of configurations (run), and whether they can be batched (batchable)."""
