"""Log configuration for the command line: structlog, JSON or console, on stderr.

Library code only calls ``structlog.get_logger``; a program decides how logs look. The
``trellis`` commands call :func:`configure_logging`; embedding programs configure structlog
their own way (and may use :func:`add_logger_name` and :func:`add_trace_ids`).
Standard-library loggers (Hypercorn, psycopg) render the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from . import tracing

LogFormat = Literal["json", "console"]


def configure_logging(
    format: LogFormat | None = None, *, level: str = "info", stream: TextIO | None = None
) -> LogFormat:
    """Send every log line to ``stream`` (stderr): JSON, or console lines on a terminal.

    ``format=None`` picks console for a terminal and JSON otherwise. Console lines are in
    colour on a terminal, never with ``NO_COLOR`` set, always with ``FORCE_COLOR`` set
    (``NO_COLOR`` wins). Every line names its logger; a line logged inside a span carries
    ``trace_id`` and ``span_id``. Returns the format used.
    """
    stream = stream if stream is not None else sys.stderr
    tty = stream.isatty()
    chosen: LogFormat = format or ("console" if tty else "json")
    levelno = logging.getLevelName(level.upper())
    if not isinstance(levelno, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_logger_name,
        structlog.processors.add_log_level,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if chosen == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = _colors(tty)
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=_NamedPrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(levelno)
    return chosen


def _colors(tty: bool) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set; anywhere with ``FORCE_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or tty


class _NamedPrintLogger(structlog.PrintLogger):
    """A print logger that knows the name it was asked for (``get_logger("trellis.x")``)."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        name = args[0] if args and isinstance(args[0], str) else None
        return _NamedPrintLogger(self._file, name)


def add_logger_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: ``logger`` is the logger's name (of a standard-library
    record too), when it has one."""
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: ``trace_id`` and ``span_id`` of the current span (hex, as
    trace back ends show them), when there is one."""
    ids = tracing.current_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict
