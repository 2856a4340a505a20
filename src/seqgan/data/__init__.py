"""Data sources: the synthetic oracle and its sampled train / held-out sets."""
