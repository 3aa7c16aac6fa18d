"""What a handler gets as ``ctx``: one class for async, thread and process handlers."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any, Protocol

import structlog
import trio

from .errors import ValidationError


class TaskHost(Protocol):
    """The worker running an attempt, as its context sees it."""

    @property
    def name(self) -> str: ...

    task_log: structlog.typing.FilteringBoundLogger

    def alive(self) -> None: ...

    def report_progress(
        self, task_id: str, attempt: int, fraction: float, message: str | None
    ) -> None: ...


class Done:
    """What :meth:`TaskContext.progress` returns: the progress is recorded already, so
    ``ctx.progress(...)`` works anywhere; awaiting it (in an async handler, as before) is a
    trio checkpoint, where a cancel or timeout reaches the handler."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        # Awaited through __await__, as the caller awaits this object.
        return trio.lowlevel.checkpoint().__await__()  # noqa: ASYNC105

    def __repr__(self) -> str:
        return "<progress recorded>"


DONE = Done()


class TaskContext:
    """The running attempt of one task, as its handler sees it."""

    # Made for every attempt, so it holds references and builds the rest on demand.
    __slots__ = (
        "_cancelled",
        "_host",
        "_log",
        "_threaded",
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
        cancel_scope: trio.CancelScope,
        host: TaskHost,
        threaded: bool = False,
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        #: Cancelling it ends the attempt as cancelled.
        self.cancel_scope = cancel_scope
        self._host = host
        self._log: structlog.typing.FilteringBoundLogger | None = None
        self._threaded = threaded  # the handler runs in a worker thread
        self._cancelled = False

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

    def progress(self, fraction: float, message: str | None = None) -> Done:
        """Record how far the task has got (0..1), with an optional message.

        It is recorded at once, from the event loop or from a handler's thread; the
        awaitable it returns is already done, so ``await ctx.progress(...)`` in an async
        handler and ``ctx.progress(...)`` in a ``def`` handler both work. Once the attempt
        is cancelled or timed out, progress is ignored.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValidationError(f"progress must be between 0 and 1, got {fraction}")
        if not self._cancelled:
            self._in_loop(self._report, fraction, message)
        return DONE

    def _report(self, fraction: float, message: str | None) -> None:
        self._host.alive()
        self._host.report_progress(self.task_id, self.attempt, fraction, message)

    def alive(self) -> None:
        """Tell the worker's watchdog that long work is still making progress."""
        if not self._cancelled:
            self._in_loop(self._host.alive)

    def cancelled(self) -> bool:
        """True once this attempt was cancelled or timed out.

        An async handler is interrupted by ``trio.Cancelled`` anyway; a thread cannot be
        interrupted, so a long ``def`` handler should check this now and then and return.
        """
        return self._cancelled

    def _in_loop(self, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` in the worker's event loop: at once there, or from a handler
        thread through trio (dropped when the attempt or the runtime has ended)."""
        if not self._threaded:
            fn(*args)
            return
        # Dropped when the attempt was abandoned or the runtime stopped: nobody listens.
        with contextlib.suppress(trio.Cancelled, trio.RunFinishedError):
            trio.from_thread.run_sync(fn, *args)
