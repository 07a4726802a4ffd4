"""Evaluation: FID and the other metrics of a generator or image set,
their feature extractors and the real splits' cached statistics."""
