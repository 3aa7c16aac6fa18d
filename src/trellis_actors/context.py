"""What a handler gets as ``ctx``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
import trio

from .errors import ValidationError


class TaskContext:
    """The running attempt of one task, as its handler sees it."""

    __slots__ = ("_alive", "_report_progress", "attempt", "cancel_scope", "log", "task_id", "type")

    def __init__(
        self,
        *,
        task_id: str,
        type: str,
        attempt: int,
        log: structlog.typing.FilteringBoundLogger,
        cancel_scope: trio.CancelScope,
        report_progress: Callable[[float, str | None], Any],
        alive: Callable[[], None],
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        #: A structlog logger bound to ``task_id``, ``task_type``, ``attempt`` and ``worker``.
        self.log = log
        #: Cancelling it ends the attempt as cancelled.
        self.cancel_scope = cancel_scope
        self._report_progress = report_progress
        self._alive = alive

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the task has got (0..1), with an optional message."""
        if not 0.0 <= fraction <= 1.0:
            raise ValidationError(f"progress must be between 0 and 1, got {fraction}")
        self._alive()
        await self._report_progress(fraction, message)

    def alive(self) -> None:
        """Tell the worker's watchdog that long work is still making progress."""
        self._alive()
