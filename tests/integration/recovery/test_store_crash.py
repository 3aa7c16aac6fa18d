"""The store actor crashes, or its store fails for a moment; no task is lost.

The database layer is the real SQLite store with one call made to fail once (nothing is
written). A bug (an AssertionError) escapes the store actor, which crashes: the requests
in its batch fail, the outcomes in it are lost, and the supervisor restarts it. What was
lost comes back through the leases: every submitted task still completes, and
subscriptions made before the crash keep receiving events after it.

A disk error is an outage, not a crash: the store actor is not restarted, the requests in
the batch are refused (``StoreUnavailable``) and its outcomes are kept, then written once
the store answers again, so that no task waits for its lease to expire.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
from tests.integration.recovery import recovery_app
from tests.integration.recovery.kit import Log, lease_recoveries
from tests.integration.recovery.recovery_app import app

from trellis_actors import TaskStatus, open_runtime
from trellis_actors.errors import ActorCrashed, StoreUnavailable
from trellis_actors.stores import SqliteStore


def fail_once(store: SqliteStore, method: str, nth: int, error: Exception) -> list[int]:
    """Make the ``nth`` call of the store's ``method`` (``finish`` or ``claim``, as made
    inside a batch's transaction) raise ``error``; returns a list that counts the
    failures."""
    logic = store._logic
    found = getattr(logic, method)
    calls, failures = [0], []

    def call(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth:
            failures.append(calls[0])
            raise error
        return found(*args, **kwargs)

    setattr(logic, method, call)  # the instance attribute hides the method
    return failures


@pytest.mark.parametrize(
    "method",
    [
        # Outcomes (and the starts reported with them) are lost with the batch: the tasks
        # stay held under our lease until it expires, and then run again.
        "finish",
        # The queue's claim fails too: the queue keeps its waiting workers and claims
        # again at its next poll (it is not restarted).
        "claim",
    ],
)
async def test_store_actor_crash_is_restarted_and_loses_no_task(
    tmp_path: Path, method: str
) -> None:
    """A store call hits a bug once: the store actor restarts and every task completes.

    The failure rolls back the whole batch's transaction: submissions in that batch fail
    (and store nothing), so the client submits them again, as an HTTP client would."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    failures = fail_once(store, method, nth=2, error=AssertionError("a bug in a store step"))
    recovery_app.open_log(str(tmp_path / "tasks.log"))
    try:
        await _run_through_a_crash(store, method, failures, tmp_path)
    finally:
        recovery_app.close_log()


async def _run_through_a_crash(
    store: SqliteStore, method: str, failures: list[int], tmp_path: Path
) -> None:
    items = [{"type": "echo", "payload": i} for i in range(200)]
    items += [{"type": "nap", "payload": {"seconds": 0.02}} for _ in range(20)]
    async with (
        open_runtime(
            app, store=store, workers=4, lease=1, janitor_interval=0.2, poll_interval=0.1
        ) as rt,
        rt.subscribe() as events,
    ):
        submitted: list[str] = []
        for start in range(0, len(items), 55):
            try:
                chunk = await rt.submit_many(items[start : start + 55])
            except ActorCrashed:
                chunk = await rt.submit_many(items[start : start + 55])
            submitted += [task.id for task in chunk]
        completed: set[str] = set()
        with trio.fail_after(30):
            async for move in events:  # subscribed before the crash
                if move.task.status is TaskStatus.COMPLETED:
                    completed.add(move.task.id)
                if completed >= set(submitted):
                    break
        assert len(failures) == 1
        # A rejected submission stored nothing: no task is there twice.
        assert (await rt.counts()).total(TaskStatus.COMPLETED) == len(items)
        tree = rt.snapshot()
        store_actor = tree.find("store")
        assert store_actor is not None and store_actor.restarts == 1
        assert store_actor.state == "running"
        assert store_actor.last_error is not None and "a bug" in store_actor.last_error
        tasks = [await rt.get(task_id) for task_id in submitted]
        histories = [await rt.events(task_id) for task_id in submitted]
        queue = tree.find("queue")
        assert queue is not None
    assert all(task.status is TaskStatus.COMPLETED for task in tasks)
    ran_again = [ids for ids in Log.read(tmp_path / "tasks.log").starts.values() if len(ids) > 1]
    if method == "finish":
        assert ran_again, "no outcome was lost with the batch: the crash tested nothing"
        assert sum(lease_recoveries(events) for events in histories) <= len(ran_again)
    else:
        # Its claim failed with the store: it keeps its waiting workers and claims again.
        assert queue.restarts == 0


@pytest.mark.parametrize("method", ["finish", "claim"])
async def test_store_failing_once_is_an_outage_and_loses_no_outcome(
    tmp_path: Path, method: str
) -> None:
    """A store call fails once with a disk error: no restart, and no outcome waits for
    its lease (the batch's outcomes are kept and written once the store answers)."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    failures = fail_once(store, method, nth=2, error=sqlite3.OperationalError("disk I/O error"))
    items = [{"type": "echo", "payload": i} for i in range(200)]
    items += [{"type": "nap", "payload": {"seconds": 0.02}} for _ in range(20)]
    async with (
        # Leases far longer than the test: a task finished only through one would hang it.
        open_runtime(app, store=store, workers=4, lease=60, poll_interval=0.1) as rt,
        rt.subscribe() as events,
    ):
        submitted: list[str] = []
        for start in range(0, len(items), 55):
            while True:
                try:
                    chunk = await rt.submit_many(items[start : start + 55])
                    break
                except StoreUnavailable as exc:
                    await trio.sleep(exc.retry_after)  # as told: the store is probed then
            submitted += [task.id for task in chunk]
        completed: set[str] = set()
        with trio.fail_after(30):
            async for move in events:
                if move.task.status is TaskStatus.COMPLETED:
                    completed.add(move.task.id)
                if completed >= set(submitted):
                    break
        assert len(failures) == 1
        assert (await rt.counts()).total(TaskStatus.COMPLETED) == len(items)
        tree = rt.snapshot()
        assert [(actor.name, actor.restarts) for actor in tree.children if actor.restarts] == []
        histories = [await rt.events(task_id) for task_id in submitted]
    assert sum(lease_recoveries(events) for events in histories) == 0
