"""OpenTelemetry spans, when the ``otel`` extra is installed; no-ops otherwise.

The trace context of the code that submits a task is stored with the task, so the span of
its execution is a child of the submitting request's trace — even on another node or after
a restart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

try:  # the otel extra
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - exercised where the extra is absent
    propagate = None  # type: ignore[assignment]
    trace = None  # type: ignore[assignment]

_TRACER_NAME = "trellis_actors"

#: ``messaging.system`` of Trellis's producer and consumer spans.
MESSAGING_SYSTEM = "trellis"


def messaging(
    operation: Literal["send", "process"], queues: Sequence[str], *, message_id: str | None = None
) -> dict[str, Any]:
    """The OpenTelemetry messaging attributes of an enqueue (``send``, a producer span) or
    an execution (``process``, a consumer span) of tasks in ``queues`` (one per task): the
    queue is the destination when they share one; a batch of several has its count."""
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": "enqueue" if operation == "send" else "process",
    }
    if queues and all(queue == queues[0] for queue in queues):
        attributes["messaging.destination.name"] = queues[0]
    if len(queues) > 1:
        attributes["messaging.batch.message_count"] = len(queues)
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    return attributes


def enabled() -> bool:
    """True when the otel extra is installed and a tracer provider has been set up."""
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex (32 and 16 digits), or None."""
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def inject() -> dict[str, str] | None:
    """The current trace context as a carrier (W3C ``traceparent``), or None."""
    if propagate is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    kind: str = "internal",
) -> Iterator[Any]:
    """A span named ``name``, child of ``parent`` (a carrier) or of the current span."""
    if trace is None:
        yield None
        return
    context = propagate.extract(dict(parent)) if parent else None
    span_kind = {
        "internal": trace.SpanKind.INTERNAL,
        "server": trace.SpanKind.SERVER,
        "producer": trace.SpanKind.PRODUCER,
        "consumer": trace.SpanKind.CONSUMER,
    }[kind]
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        name, context=context, kind=span_kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def rename_current(name: str, attributes: Mapping[str, Any]) -> None:
    """Rename the current span, when it is recorded, and add ``attributes`` to it."""
    if trace is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.update_name(name)
        current.set_attributes(dict(attributes))


def error_status() -> Any:
    """A span status that marks an error."""
    assert trace is not None, "only with the otel extra"
    return trace.Status(trace.StatusCode.ERROR)
