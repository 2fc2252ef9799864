"""The HTTP surfaces served by FastAPI behind the gateway: admin, feedback, metrics and health."""
