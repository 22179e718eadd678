"""Metrics: exact match through the verifiers, perplexity, and the records a run leaves."""
