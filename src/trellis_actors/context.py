"""What a handler gets as ``ctx``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
import trio

from .errors import ValidationError


class TaskContext:
    """The running attempt of one task, as its handler sees it."""

    __slots__ = (
        "_alive",
        "_log",
        "_make_log",
        "_report_progress",
        "attempt",
        "cancel_scope",
        "task_id",
        "type",
    )

    def __init__(
        self,
        *,
        task_id: str,
        type: str,
        attempt: int,
        make_log: Callable[[], structlog.typing.FilteringBoundLogger],
        cancel_scope: trio.CancelScope,
        report_progress: Callable[[float, str | None], Any],
        alive: Callable[[], None],
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        self._make_log = make_log
        self._log: structlog.typing.FilteringBoundLogger | None = None
        #: Cancelling it ends the attempt as cancelled.
        self.cancel_scope = cancel_scope
        self._report_progress = report_progress
        self._alive = alive

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound to ``task_id``, ``task_type``, ``attempt`` and ``worker``."""
        if self._log is None:
            self._log = self._make_log()
        return self._log

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the task has got (0..1), with an optional message."""
        if not 0.0 <= fraction <= 1.0:
            raise ValidationError(f"progress must be between 0 and 1, got {fraction}")
        self._alive()
        await self._report_progress(fraction, message)

    def alive(self) -> None:
        """Tell the worker's watchdog that long work is still making progress."""
        self._alive()
