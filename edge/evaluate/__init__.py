"""Reproducible accuracy: run the real streaming pipeline over a labelled manifest and report the metrics."""
