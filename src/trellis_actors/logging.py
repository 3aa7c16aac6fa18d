"""Log configuration for the command line: structlog, JSON or console, on stderr.

Library code only calls ``structlog.get_logger``; a program decides how logs look. The
``trellis`` commands call :func:`configure_logging`; embedding programs configure structlog
their own way. Standard-library loggers (Hypercorn, psycopg) render the same way.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]


def configure_logging(
    format: LogFormat | None = None, *, level: str = "info", stream: TextIO | None = None
) -> LogFormat:
    """Send every log line to ``stream`` (stderr): JSON, or console lines on a terminal.

    ``format=None`` picks console for a terminal and JSON otherwise. Returns the format used.
    """
    stream = stream if stream is not None else sys.stderr
    tty = stream.isatty()
    chosen: LogFormat = format or ("console" if tty else "json")
    levelno = logging.getLevelName(level.upper())
    if not isinstance(levelno, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if chosen == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.PrintLoggerFactory(stream),
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
