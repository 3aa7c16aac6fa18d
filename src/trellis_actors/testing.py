"""Helpers for testing code that uses Trellis, in virtual time.

Under trio's ``MockClock`` with ``autojump_threshold=0`` the clock jumps ahead whenever
every task is waiting, so retries, backoff, delays, timeouts and schedules that would take
minutes run in milliseconds::

    from trellis_actors import App, testing

    async def main():
        async with testing.open_test_runtime(app) as rt:
            task = await rt.submit("report", {"day": "2026-01-01"})
            await testing.run_until_idle(rt)
            assert (await rt.get(task.id)).status == "completed"

    testing.run(main)

With pytest-trio, use its ``autojump_clock`` fixture instead of :func:`run`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio
import trio.testing

from .app import App
from .lifecycle import ACTIVE, TERMINAL, TaskStatus
from .runtime.runtime import EventStream, Runtime, open_runtime

T = TypeVar("T")


def run(async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio.run`` under an autojumping ``MockClock``: time passes only when all wait."""
    return trio.run(async_fn, *args, clock=trio.testing.MockClock(autojump_threshold=0))


@asynccontextmanager
async def open_test_runtime(
    app: App | None = None, *, workers: int = 4, **config: Any
) -> AsyncIterator[Runtime]:
    """A runtime on the in-memory store, sized for tests."""
    async with open_runtime(app, store="memory://", workers=workers, **config) as rt:
        yield rt


async def run_until_idle(rt: Runtime, *, timeout: float | None = 3600.0) -> None:
    """Return once no task is pending, queued, running, retrying or waiting.

    Delayed tasks count as work: in virtual time the clock jumps to them. Raises
    ``trio.TooSlowError`` after ``timeout`` (virtual) seconds.
    """
    with trio.fail_after(timeout) if timeout is not None else trio.CancelScope():
        async with rt.subscribe() as events, trio.open_nursery() as nursery:
            send, ended = trio.open_memory_channel[None](1)
            nursery.start_soon(_signal_ends, events, send)
            while await active_count(rt):
                with trio.move_on_after(rt.config.poll_interval):
                    await ended.receive()
            nursery.cancel_scope.cancel()


async def _signal_ends(events: EventStream, send: trio.MemorySendChannel[None]) -> None:
    """Only a task ending can leave the runtime idle: signal once per batch of moves with
    an end in it, so the caller counts again then rather than after every move."""
    async for batch in events.batches():
        if any(move.event.to_status in TERMINAL for move in batch):
            with contextlib.suppress(trio.WouldBlock):
                send.send_nowait(None)


async def active_count(rt: Runtime) -> int:
    """How many tasks are not yet finished (pending, queued, running, retrying or waiting)."""
    counts = await rt.counts()
    return sum(counts.total(TaskStatus(status)) for status in ACTIVE)
