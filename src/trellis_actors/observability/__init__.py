"""Observability that hangs off the lifecycle stream: metrics, tracing set-up, logging."""
