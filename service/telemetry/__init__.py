"""Metrics and the recorder: what the hot path may call."""
