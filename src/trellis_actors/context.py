"""What a handler gets as ``ctx``."""

from __future__ import annotations

from typing import Protocol

import structlog
import trio

from .errors import ValidationError


class TaskHost(Protocol):
    """The worker running an attempt, as its context sees it."""

    @property
    def name(self) -> str: ...

    task_log: structlog.typing.FilteringBoundLogger

    def alive(self) -> None: ...

    async def report_progress(self, task_id: str, fraction: float, message: str | None) -> None: ...


class TaskContext:
    """The running attempt of one task, as its handler sees it."""

    # Made for every attempt, so it holds references and builds the rest on demand.
    __slots__ = ("_host", "_log", "attempt", "cancel_scope", "task_id", "type")

    def __init__(
        self,
        *,
        task_id: str,
        type: str,
        attempt: int,
        cancel_scope: trio.CancelScope,
        host: TaskHost,
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        #: Cancelling it ends the attempt as cancelled.
        self.cancel_scope = cancel_scope
        self._host = host
        self._log: structlog.typing.FilteringBoundLogger | None = None

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound to ``task_id``, ``task_type``, ``attempt`` and ``worker``."""
        if self._log is None:
            self._log = self._host.task_log.bind(
                task_id=self.task_id,
                task_type=self.type,
                attempt=self.attempt,
                worker=self._host.name,
            )
        return self._log

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the task has got (0..1), with an optional message."""
        if not 0.0 <= fraction <= 1.0:
            raise ValidationError(f"progress must be between 0 and 1, got {fraction}")
        self._host.alive()
        await self._host.report_progress(self.task_id, fraction, message)

    def alive(self) -> None:
        """Tell the worker's watchdog that long work is still making progress."""
        self._host.alive()
