"""Drift: out-of-domain scoring and the detectors that watch quality, latency, feedback and the split."""
