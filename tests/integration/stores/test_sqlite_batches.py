"""SQLite writes batches as multi-row statements (chunks of 256, 64, 16, 4 and 1 rows).

Batches of awkward sizes, whose rows differ in every column a batch writes, must read
back exactly: each task, each event, once, whichever chunk carried it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from trellis_actors.lifecycle import Task, TaskError, TaskEvent, TaskStatus
from trellis_actors.stores import NewTask, Outcome, SqliteStore, TaskFilter

S = TaskStatus
NOW = 1_000.0
LEASE = 600.0

# Values JSON carries that a column mix-up or a lossy write would change.
AWKWARD: list[Any] = [
    0.1,
    1e-300,
    5e-324,  # the smallest subnormal
    1.7976931348623157e308,
    -0.0,
    2**53 + 1,  # not a float
    -(2**63),
    10**30,  # beyond 64 bits
    "héllo wörld ✓ 日本語 🎉",
    "quotes ' \" and \\ backslash, \u0000 nul",
    "",
    {"nested": {"deep": [1, {"x": None}], "t": True, "f": False}},
    [],
    {},
    None,
    True,
]


def payload(i: int) -> Any:
    """A distinct payload for task ``i``: a bare null, lists and dicts of awkward values."""
    if i == 1:
        return None
    value = AWKWARD[i % len(AWKWARD)]
    if i % 3 == 0:
        return [i, value]
    return {"i": i, "v": value, "ü": [value, {"i": -i}]}


def new_task(i: int) -> NewTask:
    """Task ``i``: every column it writes differs from its neighbours'."""
    return NewTask(
        type=f"type-{i % 4}",
        payload=payload(i),
        queue=f"q{i % 3}",
        priority=i % 7 - 3,
        run_at=NOW + 50 if i % 5 == 2 else None,  # some wait pending, some are queued
        max_attempts=1 + i % 4,
        timeout=None if i % 2 else i / 8,
        dead_letter=i % 2 == 0,
        schedule_id=f"sched-{i}" if i % 6 == 0 else None,
        trace_context={"traceparent": f"00-{i:032x}-{i:016x}-01"} if i % 4 == 1 else None,
    )


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON text: 1 and 1.0, or True and 1, are not the same here."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def history(events: list[TaskEvent]) -> list[tuple[Any, ...]]:
    return [(e.task_id, e.from_status, e.to_status, e.at, e.attempt, e.detail) for e in events]


def batches(items: list[Any], sizes: tuple[int, ...] = (7, 1, 64, 3, 257, 16, 5)) -> list[Any]:
    """``items`` cut into consecutive batches of odd sizes, cycling through ``sizes``."""
    out, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= len(items):
            return out
        out.append(items[start : start + size])
        start += size
    raise AssertionError("unreachable")


@pytest.mark.parametrize("count", [1, 3, 5, 17, 257, 337, 1000])
async def test_batches_of_any_size_read_back_exactly(tmp_path: Path, count: int) -> None:
    """Enqueue, promote, claim, start and finish ``count`` tasks in batches: every task and
    every event is stored once, exactly as made."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    await store.open()
    try:
        news = [new_task(i) for i in range(count)]
        submitted, arrived = await store.enqueue(news, NOW)
        assert len(submitted) == count and all(s.created for s in submitted)
        delayed = {s.task.id for s in submitted if s.task.status is S.PENDING}
        assert len(arrived) == 2 * count - len(delayed)
        for new, (task, _) in zip(news, submitted, strict=True):
            stored = await store.get(task.id)
            assert stored is not None
            assert dataclasses.asdict(stored) == dataclasses.asdict(task)
            assert same_json(stored.payload, new.payload)
            assert (stored.type, stored.queue, stored.priority) == (
                new.type,
                new.queue,
                new.priority,
            )
            assert (stored.max_attempts, stored.timeout, stored.dead_letter) == (
                new.max_attempts,
                new.timeout,
                new.dead_letter,
            )
            assert (stored.schedule_id, stored.trace_context) == (
                new.schedule_id,
                new.trace_context,
            )

        # Listing pages through every one of them, newest first, each once.
        listed: list[Task] = []
        cursor: str | None = None
        while True:
            page = await store.list_tasks(TaskFilter(), 100, cursor)
            listed += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert [task.id for task in listed] == [s.task.id for s in reversed(submitted)]
        counts = await store.counts()
        assert sum(n for queue in counts.by_queue.values() for n in queue.values()) == count
        assert counts.total(S.PENDING) == len(delayed)

        promoted = await store.promote_due(NOW + 50, count)
        assert {move.task.id for move in promoted} == delayed
        claimed = await store.claim(None, count, "w1", NOW + 60 + LEASE, NOW + 60)
        assert len(claimed) == count
        assert {task.id for task in claimed} == {s.task.id for s in submitted}
        for task in claimed:
            assert task.status is S.QUEUED and task.lease_owner == "w1"
            stored = await store.get(task.id)
            assert stored is not None
            assert dataclasses.asdict(stored) == dataclasses.asdict(task)

        # Starts in batches of odd sizes, each at its own time.
        running: list[Task] = []
        for number, chunk in enumerate(batches(claimed, (5, 64, 1, 257, 3))):
            starts = [
                Outcome(task.id, "w1", 1, S.RUNNING, started_at=NOW + 61 + number / 8)
                for task in chunk
            ]
            moves = await store.finish(starts, NOW + 70)
            assert [move.task.id for move in moves] == [task.id for task in chunk]
            running += [move.task for move in moves]
        for task in running:
            stored = await store.get(task.id)
            assert stored is not None
            assert dataclasses.asdict(stored) == dataclasses.asdict(task)

        # Outcomes in batches of odd sizes; each result is the task's own payload.
        finished: dict[str, Task] = {}
        for number, chunk in enumerate(batches(running)):
            outcomes = [
                Outcome(task.id, "w1", 1, S.COMPLETED, result=task.payload) for task in chunk
            ]
            moves = await store.finish(outcomes, NOW + 100 + number)
            assert [move.task.id for move in moves] == [task.id for task in chunk]
            finished.update((move.task.id, move.task) for move in moves)
        assert len(finished) == count

        started_at = {task.id: task.started_at for task in running}
        for new, (task, _) in zip(news, submitted, strict=True):
            done = finished[task.id]
            stored = await store.get(task.id)
            assert stored is not None
            assert dataclasses.asdict(stored) == dataclasses.asdict(done)
            assert stored.status is S.COMPLETED and stored.lease_owner is None
            assert same_json(stored.result, new.payload)
            assert same_json(stored.payload, new.payload)
            queued_at = NOW + 50 if task.id in delayed else NOW
            assert history(await store.events(task.id)) == [
                (task.id, None, S.PENDING, NOW, 0, None),
                (task.id, S.PENDING, S.QUEUED, queued_at, 0, None),
                (task.id, S.QUEUED, S.RUNNING, started_at[task.id], 1, None),
                (task.id, S.RUNNING, S.COMPLETED, done.finished_at, 1, None),
            ]
        assert (await store.counts()).total(S.COMPLETED) == count
    finally:
        await store.close()


async def test_a_batch_of_mixed_moves_writes_each_once(tmp_path: Path) -> None:
    """One finish call whose 337 outcomes end in every way (completed, retrying, failed
    and dead, cancelled), some for tasks whose start it records too, writes 337 task rows
    and one to three events each."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    await store.open()
    try:
        count = 337
        submitted, _ = await store.enqueue(
            [NewTask("echo", {"i": i}, dead_letter=i % 8 != 3) for i in range(count)], NOW
        )
        claimed = await store.claim(None, count, "w1", NOW + LEASE, NOW)
        # Every third task's start is recorded first; the others start with their outcome.
        early = [task for task in claimed if task.payload["i"] % 3 == 0]
        await store.finish([Outcome(t.id, "w1", 1, S.RUNNING) for t in early], NOW + 1)
        boom = TaskError("ValueError", "boom", "Traceback …")
        ends = [S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED]
        outcomes = []
        for task in claimed:
            status = ends[task.payload["i"] % 4]
            outcomes.append(
                Outcome(
                    task.id,
                    "w1",
                    1,
                    status,
                    result=task.payload if status is S.COMPLETED else None,
                    error=boom if status in (S.RETRYING, S.FAILED) else None,
                    retry_at=NOW + 30 if status is S.RETRYING else None,
                    started_at=NOW + 2,
                )
            )
        moves = await store.finish(outcomes, NOW + 5)
        latest = {move.task.id: move.task for move in moves}
        assert len(latest) == count
        histories = [await store.events(task.id) for task in claimed]
        assert len(moves) == sum(len(events) - 2 for events in histories) - len(early)
        for (task, _), i in zip(submitted, range(count), strict=True):
            stored = await store.get(task.id)
            assert stored is not None
            assert dataclasses.asdict(stored) == dataclasses.asdict(latest[task.id])
            end = ends[i % 4]
            expected = [S.PENDING, S.QUEUED, S.RUNNING, end]
            if end is S.FAILED and stored.dead_letter:
                expected.append(S.DEAD)
            assert [e.to_status for e in await store.events(task.id)] == expected
            assert stored.status is expected[-1]
            assert stored.started_at == (NOW + 1 if i % 3 == 0 else NOW + 2)
            if end is S.RETRYING:
                assert (stored.run_at, stored.error) == (NOW + 30, boom)
            elif end is S.COMPLETED:
                assert stored.result == {"i": i}
            elif end is S.FAILED:
                assert stored.error == boom and stored.finished_at == NOW + 5
        assert await store.next_due_at() == NOW + 30
    finally:
        await store.close()
