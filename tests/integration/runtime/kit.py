"""Helpers for the runtime tests: a concurrency gauge, task listings and event checks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from trellis_actors import Runtime, Task, TaskEvent, TaskStatus


class Gauge:
    """Handlers count themselves in and out; ``peak`` is the most seen at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.entered = 0

    @contextmanager
    def inside(self) -> Iterator[None]:
        self.now += 1
        self.entered += 1
        self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            self.now -= 1


async def all_tasks(rt: Runtime, **filters: Any) -> list[Task]:
    """Every task matching ``filters``, newest first, following the cursor."""
    tasks: list[Task] = []
    cursor = None
    while True:
        page = await rt.list(limit=1000, cursor=cursor, **filters)
        tasks.extend(page.items)
        if page.next_cursor is None:
            return tasks
        cursor = page.next_cursor


async def submit_until(
    rt: Runtime, status: TaskStatus, type: str, payload: Any = None, **fields: Any
) -> Task:
    """Submit a task and return it once it reaches ``status`` (an hour of virtual time at
    most, so a test that waits for the wrong thing fails instead of hanging)."""
    with trio.fail_after(3600):
        async with rt.subscribe() as events:
            task = await rt.submit(type, payload, **fields)
            async for move in events:
                if move.task.id == task.id and move.task.status is status:
                    return move.task
    raise AssertionError("the event stream ended")


def path(events: list[TaskEvent]) -> list[str]:
    """The statuses a task went through, from its creation."""
    return [event.to_status.value for event in events]


def assert_chained(events: list[TaskEvent]) -> None:
    """Each event starts where the previous one ended, in time order."""
    assert events[0].from_status is None
    for before, after in itertools.pairwise(events):
        assert after.from_status is before.to_status, (before, after)
        assert after.at >= before.at
