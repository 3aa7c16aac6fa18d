"""What ``trellis_actors.postgres`` and ``trellis_actors.sqlite`` share: a submission
checked as every other path checks it (:func:`trellis_actors.rules.new_task`), and the
trace context a traced producer hands on."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import Any

from . import rules, tracing
from .errors import ConfigurationError
from .lifecycle import NewTask


def one(task: Any, payload: Any, options: Mapping[str, Any]) -> tuple[list[NewTask], float]:
    """One submission, checked; with the time it was checked at (``now`` for the store)."""
    now = time.time()
    return [rules.new_task(rules.AnyTypes(), task, payload, now, **options)], now


def many(items: Iterable[Mapping[str, Any]]) -> tuple[list[NewTask], float]:
    """A batch (``{"type", "payload", ...}`` each), checked whole: all of it or nothing."""
    now = time.time()
    return rules.new_tasks(rules.AnyTypes(), items, now=now), now


def no_schema(error: Exception) -> ConfigurationError:
    """The error for a database without Trellis's tables (the driver's ``error`` says which
    is missing): nothing was written."""
    return ConfigurationError(
        f"this connection's database has no Trellis tables ({error}): start a node on it, "
        "or run `trellis migrate`, first"
    )


@contextmanager
def _traced_span(tasks: list[NewTask]) -> Iterator[None]:
    attributes = tracing.messaging("send", [task.queue for task in tasks])
    attributes["trellis.count"] = len(tasks)
    with tracing.span("trellis.enqueue", kind="producer", attributes=attributes):
        carrier = tracing.inject()
        tasks[:] = [replace(task, trace_context=carrier) for task in tasks]
        yield


def traced(tasks: list[NewTask]) -> AbstractContextManager[Any]:
    """Around a write of ``tasks``: when tracing is on, a producer span whose context the
    tasks carry (in place), as ``Runtime.enqueue`` does."""
    return _traced_span(tasks) if tasks and tracing.enabled() else nullcontext()
