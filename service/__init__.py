"""tunewatch: production monitoring for fine-tuned LLM deployments."""

__version__ = "0.1.0"
