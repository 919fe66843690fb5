"""Accuracy evaluation and threshold calibration (issue 8): pairs, metrics, thresholds, plots, reports."""
