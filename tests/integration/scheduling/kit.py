"""Helpers for scheduler tests: an app whose task records when it ran, and a count of fires."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import trio

from trellis_actors import App, Runtime, Task


def utc(text: str) -> float:
    """Seconds since the epoch of a UTC date-time written ``2025-03-30T01:00``."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


class WallClock:
    """Stands in for the ``time`` module where runtimes read the wall clock: the date is
    ``base + trio.current_time()``, so it moves with virtual time, across runtimes too."""

    def __init__(self, start: str = "2025-01-15T00:00:00") -> None:
        self.base = utc(start)

    def time(self) -> float:
        return self.base + trio.current_time()

    def set(self, text: str) -> None:
        """Make the wall clock read ``text`` (UTC) now; runtimes opened later see it."""
        self.base = utc(text) - trio.current_time()


class Ticks:
    """An app with a ``tick`` task type that records the trio time of every run."""

    def __init__(self) -> None:
        self.app = App()
        self.times: list[float] = []
        self.app.task(self._tick, name="tick")

    async def _tick(self, ctx: Any, payload: Any) -> None:
        self.times.append(trio.current_time())

    def since(self, start: float) -> list[float]:
        """Run times relative to ``start``."""
        return [t - start for t in self.times]


async def fired(rt: Runtime, schedule_id: str) -> list[Task]:
    """Every task the schedule has created, oldest first."""
    tasks: list[Task] = []
    cursor = None
    while True:
        page = await rt.list(limit=1000, cursor=cursor)
        tasks.extend(t for t in page.items if t.schedule_id == schedule_id)
        if page.next_cursor is None:
            return sorted(tasks, key=lambda t: t.created_at)
        cursor = page.next_cursor


async def clock_now(rt: Runtime) -> float:
    """The runtime's clock now (wall-clock time mapped from trio time), read off a task."""
    return (await rt.submit("echo", "what time is it?")).created_at
