"""What the store tests share: fixed times, an error, ways to compare tasks and moves, and
the start report that brings a claimed task to ``running``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg
import trio

from trellis_actors.lifecycle import Task, TaskError, TaskEvent, TaskStatus, Transition
from trellis_actors.stores import Outcome, Store
from trellis_actors.stores.postgres import PostgresStore, parse_url

S = TaskStatus
NOW = 1_000.0
LEASE = 60.0
BOOM = TaskError("ValueError", "boom", "Traceback …")


def fields(task: Task | None) -> dict[str, Any]:
    assert task is not None
    return dataclasses.asdict(task)


def path(moves: list[Transition]) -> list[tuple[S | None, S]]:
    return [(move.event.from_status, move.event.to_status) for move in moves]


def steps(events: list[TaskEvent]) -> list[tuple[S | None, S]]:
    """A task's history (``Store.events``) as (from, to) pairs."""
    return [(event.from_status, event.to_status) for event in events]


def started(task: Task, started_at: float | None = None) -> Outcome:
    """The report that the handler of a claimed ``task`` started, made by its lease holder:
    the attempt is one more than the stored count."""
    assert task.status is S.QUEUED and task.lease_owner is not None, task
    return Outcome(task.id, task.lease_owner, task.attempt + 1, S.RUNNING, started_at=started_at)


async def start(store: Store, tasks: Sequence[Task], now: float) -> list[Task]:
    """Report that the handlers of claimed ``tasks`` started at ``now``; the running tasks."""
    moves = await store.finish([started(task) for task in tasks], now)
    assert path(moves) == [(S.QUEUED, S.RUNNING)] * len(tasks)
    return [move.task for move in moves]


async def run(
    store: Store,
    count: int,
    now: float = NOW,
    owner: str = "w1",
    queues: Sequence[str] | None = None,
) -> list[Task]:
    """Claim ``count`` tasks at ``now`` (leased until ``now + LEASE``) and start them."""
    claimed = await store.claim(queues, count, owner, now + LEASE, now)
    assert len(claimed) == count
    return await start(store, claimed, now)


async def settled(store: Store) -> None:
    """Return once every event written so far may be read (``events_after``). On
    PostgreSQL a transaction in flight on the server, even of another database (another
    test run sharing it), holds back what readers take until it ends."""
    if not isinstance(store, PostgresStore):
        return
    conninfo = parse_url(store.url)[0]
    with trio.fail_after(30):  # a guard against a hang only
        # Nothing to wait on but the server: it is polled, as the feed polls it.
        while not await trio.to_thread.run_sync(_all_readable, conninfo):  # noqa: ASYNC110
            await trio.sleep(0.01)


def _all_readable(conninfo: str) -> bool:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT coalesce(max(tx) < pg_snapshot_xmin(pg_current_snapshot()), true)"
            " FROM trellis_events"
        ).fetchone()
    return bool(row and row[0])
