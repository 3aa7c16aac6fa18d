"""Handlers off the event loop: the thread pool of ``def`` handlers, and the watch that
finds an ``async def`` handler blocking the loop."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
import trio

log = structlog.get_logger("trellis.threads")


@dataclass(frozen=True, slots=True)
class AbandonedThread:
    """A thread handler whose attempt was settled (timed out or cancelled) while it runs."""

    task_id: str
    type: str
    attempt: int
    worker: str
    since: float  # time.time() when it was abandoned

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "type": self.type,
            "attempt": self.attempt,
            "worker": self.worker,
            "since": self.since,
        }


class ThreadPool:
    """The worker threads of one runtime's ``def`` handlers.

    At most ``size`` handlers run at once (one :class:`trio.CapacityLimiter`). A thread
    cannot be killed: when its attempt times out or is cancelled, the attempt is settled at
    once and the thread is *abandoned* — it keeps its limiter token until it returns, is
    listed by :meth:`abandoned`, and its result is discarded.
    """

    def __init__(self, size: int) -> None:
        self.limiter = trio.CapacityLimiter(size)
        self._lock = threading.Lock()
        self._abandoned: dict[str, AbandonedThread] = {}

    @property
    def busy(self) -> int:
        """Threads running a handler now, abandoned ones included."""
        return int(self.limiter.borrowed_tokens)

    def abandoned(self, worker: str | None = None) -> tuple[AbandonedThread, ...]:
        """The abandoned threads still running (of one worker, if given)."""
        with self._lock:
            found = tuple(self._abandoned.values())
        return found if worker is None else tuple(a for a in found if a.worker == worker)

    async def run(
        self,
        handler: Callable[[Any, Any], Any],
        ctx: Any,
        payload: Any,
        *,
        task_id: str,
        type: str,
        attempt: int,
        worker: str,
    ) -> Any:
        """``handler(ctx, payload)`` in a worker thread; on cancellation, abandon it."""
        job = f"{task_id}:{attempt}"
        done = False

        def call() -> Any:
            nonlocal done
            thread = threading.current_thread()
            name, thread.name = thread.name, f"trellis-handler {type} {job}"
            try:
                return handler(ctx, payload)
            finally:
                thread.name = name
                with self._lock:
                    done = True
                    if self._abandoned.pop(job, None) is not None:
                        log.info(
                            "an abandoned handler thread returned", task_id=task_id, task_type=type
                        )

        try:
            return await trio.to_thread.run_sync(call, limiter=self.limiter, abandon_on_cancel=True)
        except trio.Cancelled:
            with self._lock:
                if not done:
                    self._abandoned[job] = AbandonedThread(
                        task_id, type, attempt, worker, time.time()
                    )
            if not done:
                log.warning(
                    "a handler thread runs on after its attempt ended; it keeps a thread "
                    "until it returns (check ctx.cancelled() in long handlers)",
                    task_id=task_id,
                    task_type=type,
                    attempt=attempt,
                    worker=worker,
                )
            raise


class LoopWatch:
    """Finds an event loop blocked by an ``async def`` handler, from a thread of its own.

    Every ``threshold / 2`` seconds the watch thread posts a no-op to the trio loop; when
    one waits longer than ``threshold``, the loop is blocked: the watch logs a warning
    naming the task type whose handler blocks it and counts it in :attr:`blocked`.
    """

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        #: Times the loop was found blocked, by task type ("unknown": no handler found).
        self.blocked: dict[str, int] = {}
        #: The type of the async handler last entered (set by workers; a fallback).
        self.current: str | None = None
        self._handlers: dict[Any, str] = {}  # a handler's code object -> its task type

    def watch(self, codes: dict[Any, str]) -> None:
        """Which handler code objects belong to which task types."""
        self._handlers = dict(codes)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Watch the current trio loop within the block (the thread stops at its end)."""
        if self.threshold is None:
            yield
            return
        token = trio.lowlevel.current_trio_token()
        loop_thread = threading.get_ident()
        stop = threading.Event()
        thread = threading.Thread(
            target=self._watch,
            args=(token, loop_thread, stop, self.threshold),
            name="trellis-loop-watch",
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _watch(
        self, token: trio.lowlevel.TrioToken, loop_thread: int, stop: threading.Event, limit: float
    ) -> None:
        answered = threading.Event()
        answered.set()
        posted = 0.0
        warned = False
        while not stop.wait(limit / 2):
            if answered.is_set():
                answered.clear()
                posted, warned = time.monotonic(), False
                try:
                    token.run_sync_soon(answered.set)
                except trio.RunFinishedError:
                    return
            elif not warned and time.monotonic() - posted > limit:
                warned = True  # once per blocked spell
                self._report(loop_thread, time.monotonic() - posted)

    def _report(self, loop_thread: int, seconds: float) -> None:
        task_type = self._culprit(sys._current_frames().get(loop_thread)) or self.current
        label = task_type or "unknown"
        self.blocked[label] = self.blocked.get(label, 0) + 1
        log.warning(
            "the event loop is blocked: an async handler runs blocking code; write it "
            "as a plain def (run in a thread) or use executor='process'",
            task_type=task_type,
            blocked_ms=round(seconds * 1000),
        )

    def _culprit(self, frame: FrameType | None) -> str | None:
        """The task type of the innermost handler on the loop thread's stack, if any."""
        while frame is not None:
            found = self._handlers.get(frame.f_code)
            if found is not None:
                return found
            frame = frame.f_back
        return None
