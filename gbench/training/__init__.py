"""Training: one run's loop (trainer), the engine that runs configurations end to end (runner), stopping
at a step boundary (signals, interrupted), and contract checks of plugins' specs (validate)."""
