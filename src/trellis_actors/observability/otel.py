"""Tracing set-up from the standard ``OTEL_*`` environment variables."""

from __future__ import annotations

import os

import structlog

log = structlog.get_logger("trellis.tracing")


def configure_tracing(service_name: str = "trellis") -> bool:
    """Install a tracer provider when the ``otel`` extra is present and tracing is asked for.

    ``OTEL_TRACES_EXPORTER`` picks the exporter (``otlp``, ``console`` or ``none``; default
    ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else ``none``);
    ``OTEL_SERVICE_NAME`` names the service; ``OTEL_SDK_DISABLED=true`` turns it all off.
    Returns True when spans will be exported.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    default = "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", default).lower()
    if exporter_name == "none":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        log.warning("tracing asked for, but the otel extra is not installed")
        return False
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]  # only in the otel extra
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTLP export asked for; install trellis-actors[otel]")
            return False
        exporter = OTLPSpanExporter()
    else:
        log.warning("unknown OTEL_TRACES_EXPORTER", exporter=exporter_name)
        return False
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on", exporter=exporter_name, service=name)
    return True
