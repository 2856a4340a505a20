"""Metrics (NLL-oracle, NLL-test, discriminator accuracy) and the metrics.jsonl writer."""
