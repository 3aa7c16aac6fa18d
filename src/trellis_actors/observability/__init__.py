"""Observability that hangs off the runtime's lifecycle stream: metrics and tracing set-up."""
