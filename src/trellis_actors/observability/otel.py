"""Tracing set-up from the standard ``OTEL_*`` environment variables, read as the
OpenTelemetry SDK reads them.

Trellis picks the exporters (``OTEL_TRACES_EXPORTER``) and, by default, turns tracing on
only when an OTLP endpoint is set; everything else — the endpoint and headers of the OTLP
exporter, the sampler (``OTEL_TRACES_SAMPLER``), the batch processor (``OTEL_BSP_*``), the
resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) — is the SDK's own handling.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = structlog.get_logger("trellis.tracing")

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configure_tracing(service_name: str = "trellis") -> bool:
    """Install :func:`tracer_provider` as the global tracer provider, when tracing is asked
    for and the ``otel`` extra is present. Returns True when spans will be exported."""
    provider = tracer_provider(service_name)
    if provider is None:
        return False
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    log.info(
        "tracing on",
        exporters=_exporter_names(),
        service=provider.resource.attributes.get("service.name"),
    )
    return True


def tracer_provider(service_name: str = "trellis") -> TracerProvider | None:
    """A tracer provider set up from the environment, or None when tracing is off.

    ``OTEL_SDK_DISABLED=true`` turns it off; ``OTEL_TRACES_EXPORTER`` lists the exporters
    (``otlp``, ``console``, ``none`` or any the SDK finds installed; default ``otlp`` when
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else
    ``none``). ``otlp`` speaks ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` (or
    ``OTEL_EXPORTER_OTLP_PROTOCOL``; default ``http/protobuf``). The service is named by
    ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES``, else ``service_name``.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = _exporter_names()
    if not names or "none" in names:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing asked for, but the otel extra is not installed")
        return None
    exporters = [exporter for name in names if (exporter := _exporter(name)) is not None]
    if not exporters:
        return None
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service_name}))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter_names() -> list[str]:
    default = "otlp" if any(os.environ.get(name) for name in _ENDPOINTS) else "none"
    listed = os.environ.get("OTEL_TRACES_EXPORTER") or default
    return [name.strip().lower() for name in listed.split(",") if name.strip()]


def _exporter(name: str) -> Any:
    """The exporter registered under ``name`` (the SDK's entry points), made from the
    environment; None, with a warning, when it is not installed."""
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        log.warning(
            "unknown or missing trace exporter; install trellis-actors[otel], or the "
            "package that provides it",
            exporter=name,
        )
        return None
    return next(iter(found)).load()()
