"""finish and the tasks a store leased: the SQL stores keep the tasks they claimed and, when
one starts or finishes, read back only its lease columns. What finish returns and stores must be
what a fresh read of the row would give, whatever happened to the task meanwhile: progress,
a cancel, a lost and re-taken lease, another store object (node) on the same database.

The first tests run on every store (the memory store has no such cache, and is the
reference); the ones with two store objects on one database run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.integration.stores.kit import BOOM, LEASE, NOW, S, fields, path, run, started

from trellis_actors.lifecycle import Task
from trellis_actors.stores import NewTask, Outcome, Store, open_store

# What a finish may change; every other field comes from the task as it ran.
FINISH_CHANGES = frozenset(
    {"status", "finished_at", "updated_at", "lease_owner", "lease_expires_at", "result", "error"}
)


async def claimed(store: Store, count: int, now: float = NOW, owner: str = "w1") -> list[Task]:
    """``count`` tasks claimed and started at ``now``: running."""
    return await run(store, count, now, owner)


async def leased(store: Store, count: int, now: float = NOW, owner: str = "w1") -> list[Task]:
    """``count`` tasks claimed at ``now``, not started: queued under ``owner``'s lease."""
    tasks = await store.claim(None, count, owner, now + LEASE, now)
    assert len(tasks) == count
    return tasks


def done(task: Task, **outcome: Any) -> Outcome:
    outcome.setdefault("status", S.COMPLETED)
    return Outcome(task.id, task.lease_owner or "", task.attempt, **outcome)


async def statuses(store: Store, task_id: str) -> list[S]:
    return [event.to_status for event in await store.events(task_id)]


# -- every store ---------------------------------------------------------------------------


async def test_finish_keeps_the_progress_set_while_running(store: Store) -> None:
    """Progress set after the claim is in the finished task, returned and stored; a task
    finished in the same call without progress has none."""
    await store.enqueue([NewTask("echo", {"n": n}) for n in (1, 2)], NOW)
    with_progress, without = await claimed(store, 2)
    await store.set_progress(with_progress.id, 0.25, "a quarter", NOW + 1)
    await store.set_progress(with_progress.id, 0.75, "three quarters", NOW + 2)
    moves = await store.finish([done(with_progress, result=1), done(without, result=2)], NOW + 3)
    assert path(moves) == [(S.RUNNING, S.COMPLETED)] * 2
    first, second = (move.task for move in moves)
    assert (first.progress, first.progress_message) == (0.75, "three quarters")
    assert (second.progress, second.progress_message) == (None, None)
    for move in moves:
        assert fields(await store.get(move.task.id)) == fields(move.task)


async def test_a_new_attempt_does_not_finish_with_the_last_ones_progress(store: Store) -> None:
    """Progress of attempt 1 (kept while retrying) is cleared by the next start, and the
    finish of attempt 2 shows attempt 2's progress only."""
    await store.enqueue([NewTask("echo", None)], NOW)
    (first,) = await claimed(store, 1)
    await store.set_progress(first.id, 0.5, "half", NOW + 1)
    (retry,) = await store.finish([done(first, status=S.RETRYING, error=BOOM)], NOW + 2)
    assert (retry.task.progress, retry.task.progress_message) == (0.5, "half")
    await store.promote_due(NOW + 2, 10)
    (second,) = await claimed(store, 1, NOW + 3)
    assert (second.attempt, second.progress) == (2, None)
    (end,) = await store.finish([done(second)], NOW + 4)
    assert (end.task.attempt, end.task.progress, end.task.progress_message) == (2, None, None)
    assert fields(await store.get(first.id)) == fields(end.task)


async def test_an_outcome_for_a_task_cancelled_meanwhile_is_ignored(store: Store) -> None:
    """A task cancelled while it ran stays cancelled; the others in the call finish."""
    await store.enqueue([NewTask("echo", {"n": n}) for n in (1, 2)], NOW)
    cancelled, kept = await claimed(store, 2)
    await store.cancel(cancelled.id, NOW + 1)
    moves = await store.finish([done(cancelled, result="late"), done(kept, result="ok")], NOW + 2)
    assert [move.task.id for move in moves] == [kept.id]
    stored = await store.get(cancelled.id)
    assert stored is not None
    assert (stored.status, stored.result, stored.finished_at) == (S.CANCELLED, None, NOW + 1)
    assert await statuses(store, cancelled.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.CANCELLED]
    kept_stored = await store.get(kept.id)
    assert kept_stored is not None and kept_stored.result == "ok"


async def test_an_outcome_of_a_stale_attempt_is_ignored(store: Store) -> None:
    """The lease expired and the task was recovered and claimed again, by the same owner:
    the old attempt's outcome is ignored, the new attempt's applies."""
    await store.enqueue([NewTask("echo", None)], NOW)
    (old,) = await claimed(store, 1)
    (recovered,) = await store.recover_expired(NOW + LEASE)
    assert path([recovered]) == [(S.RUNNING, S.RETRYING)]
    await store.promote_due(NOW + LEASE, 10)
    (fresh,) = await claimed(store, 1, NOW + LEASE + 1)
    assert (fresh.id, fresh.attempt, fresh.lease_owner) == (old.id, 2, old.lease_owner)

    assert await store.finish([done(old, result="stale")], NOW + LEASE + 2) == []
    stored = await store.get(old.id)
    assert stored is not None and (stored.status, stored.attempt) == (S.RUNNING, 2)

    moves = await store.finish(
        [done(old, result="stale"), done(fresh, result="fresh")], NOW + LEASE + 3
    )
    assert path(moves) == [(S.RUNNING, S.COMPLETED)]
    assert (moves[0].task.result, moves[0].task.attempt) == ("fresh", 2)
    assert fields(await store.get(old.id)) == fields(moves[0].task)


async def test_the_started_task_is_the_claimed_task_moved(store: Store) -> None:
    """Field by field, the started task is the claimed task as get() read it (after a
    heartbeat moved its lease on), but for what a start changes; and its outcome, reported
    in the same call, finishes that task."""
    await store.enqueue(
        [NewTask("report", {"rows": [1, None]}, queue="reports", priority=3, timeout=2.5)], NOW
    )
    (task,) = await leased(store, 1)
    await store.set_progress(task.id, 0.5, "not running: ignored", NOW + 1)
    assert await store.heartbeat([task.id], "w1", NOW + 500) == {task.id}
    waiting = fields(await store.get(task.id))
    assert (waiting["status"], waiting["lease_expires_at"]) == (S.QUEUED, NOW + 500)

    (move,) = await store.finish([started(task, NOW + 6)], NOW + 7)
    running = fields(move.task)
    changes = {"status", "attempt", "started_at", "updated_at", "node", "worker"}
    assert {name: running[name] for name in changes} == {
        "status": S.RUNNING,
        "attempt": 1,
        "started_at": NOW + 6,
        "updated_at": NOW + 6,
        "node": "w1",
        "worker": None,
    }
    assert {name: running[name] for name in set(running) - changes} == {
        name: waiting[name] for name in set(waiting) - changes
    }
    assert fields(await store.get(task.id)) == running

    outcomes = [done(move.task, status=S.RUNNING), done(move.task, result="ok")]
    (end,) = await store.finish(outcomes, NOW + 8)  # a second start is ignored
    assert (end.task.status, end.task.started_at, end.task.lease_owner) == (
        S.COMPLETED,
        NOW + 6,
        None,
    )
    assert fields(await store.get(task.id)) == fields(end.task)


async def test_the_finished_task_is_the_running_task_moved(store: Store) -> None:
    """Field by field, the finished task is the task as get() read it while running (after
    a heartbeat moved its lease on), but for what a finish changes."""
    await store.enqueue(
        [
            NewTask(
                "report",
                {"rows": [1, 2.5, None, "x"], "deep": {"ok": True}},
                queue="reports",
                priority=3,
                max_attempts=4,
                timeout=12.5,
                idempotency_key="report-1",
                dead_letter=False,
                schedule_id="nightly",
                trace_context={"traceparent": "00-abc-def-01"},
            )
        ],
        NOW,
    )
    (task,) = await claimed(store, 1)
    assert await store.heartbeat([task.id], "w1", NOW + 500) == {task.id}
    running = fields(await store.get(task.id))
    assert running["lease_expires_at"] == NOW + 500

    (move,) = await store.finish([done(task, result={"answer": 42})], NOW + 7)
    finished = fields(move.task)
    assert {name: finished[name] for name in FINISH_CHANGES} == {
        "status": S.COMPLETED,
        "finished_at": NOW + 7,
        "updated_at": NOW + 7,
        "lease_owner": None,
        "lease_expires_at": None,
        "result": {"answer": 42},
        "error": None,
    }
    unchanged = set(running) - FINISH_CHANGES
    assert {name: finished[name] for name in unchanged} == {
        name: running[name] for name in unchanged
    }
    assert fields(await store.get(task.id)) == finished


# -- two store objects on one database -----------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database two store objects can open: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@asynccontextmanager
async def two_nodes(url: str) -> AsyncIterator[tuple[Store, Store]]:
    first, second = open_store(url), open_store(url)
    await first.open()
    try:
        await second.open()
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


def without_id(task: Task) -> dict[str, Any]:
    found = fields(task)
    found.pop("id")
    return found


async def test_a_leased_finish_equals_a_fresh_one(shared_url: str) -> None:
    """Two like tasks, both claimed by node A: A finishes one (from what it leased), B,
    which leased nothing, the other. Both give the same task and the same history."""
    async with two_nodes(shared_url) as (a, b):
        new = NewTask("echo", {"same": [1, 2.5]}, priority=2, max_attempts=5, timeout=3.0)
        await a.enqueue([new, new], NOW)
        mine, theirs = await claimed(a, 2)
        await a.heartbeat([mine.id, theirs.id], "w1", NOW + 300)
        assert mine.id in a._logic._leased  # type: ignore[attr-defined]  # the path under test
        assert theirs.id not in b._logic._leased  # type: ignore[attr-defined]

        by_a = await a.finish([done(mine, status=S.FAILED, error=BOOM)], NOW + 9)
        by_b = await b.finish([done(theirs, status=S.FAILED, error=BOOM)], NOW + 9)
        assert path(by_a) == [(S.RUNNING, S.FAILED), (S.FAILED, S.DEAD)]
        assert [(without_id(m.task), m.event._replace(task_id="")) for m in by_a] == [
            (without_id(m.task), m.event._replace(task_id="")) for m in by_b
        ]
        for move in (by_a[-1], by_b[-1]):
            assert fields(await a.get(move.task.id)) == fields(move.task)
            assert fields(await b.get(move.task.id)) == fields(move.task)
        histories = [[e._replace(task_id="") for e in await a.events(t.id)] for t in (mine, theirs)]
        assert histories[0] == histories[1]


async def test_a_task_another_node_cancelled_is_not_resurrected(shared_url: str) -> None:
    """Node A claims, node B cancels, A reports the outcome: ignored, still cancelled."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": n}) for n in (1, 2)], NOW)
        cancelled, kept = await claimed(a, 2, owner="node-a")
        (move, *_) = await b.cancel(cancelled.id, NOW + 1)
        assert path([move]) == [(S.RUNNING, S.CANCELLED)]

        moves = await a.finish([done(cancelled, result="late"), done(kept)], NOW + 2)
        assert [m.task.id for m in moves] == [kept.id]
        for node in (a, b):
            stored = await node.get(cancelled.id)
            assert stored is not None
            assert (stored.status, stored.result, stored.lease_owner) == (S.CANCELLED, None, None)
        assert await statuses(b, cancelled.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.CANCELLED]
        assert (await b.counts()).by_queue == {"default": {"cancelled": 1, "completed": 1}}


async def test_a_lease_another_node_recovered_is_not_finished_stale(shared_url: str) -> None:
    """A's lease expires; B recovers the task and it is claimed again under the same owner
    name: A's leased copy is stale (an attempt behind), so A's old outcome is ignored and
    the new attempt's outcome, reported through A, is applied to the row as it now is."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (old,) = await claimed(a, 1, owner="node-a")
        assert path(await b.recover_expired(NOW + LEASE)) == [(S.RUNNING, S.RETRYING)]
        await b.promote_due(NOW + LEASE, 10)
        (fresh,) = await claimed(b, 1, NOW + LEASE + 1, owner="node-a")
        await b.set_progress(fresh.id, 0.5, "half", NOW + LEASE + 2)

        assert await a.finish([done(old, result="stale")], NOW + LEASE + 3) == []
        (move,) = await a.finish([done(fresh, result="fresh")], NOW + LEASE + 4)
        assert (move.task.attempt, move.task.result) == (2, "fresh")
        assert (move.task.progress, move.task.progress_message) == (0.5, "half")
        assert move.task.started_at == NOW + LEASE + 1
        assert fields(await b.get(old.id)) == fields(move.task)
        assert await statuses(b, old.id) == [
            S.PENDING, S.QUEUED, S.RUNNING, S.RETRYING, S.QUEUED, S.RUNNING, S.COMPLETED,
        ]  # fmt: skip


async def test_a_run_another_node_recovered_and_claimed_is_not_finished(shared_url: str) -> None:
    """A's run of attempt 1 expires; B recovers it and claims it again under the same owner
    name, not yet started: the row has A's owner and attempt but is queued, so A's leased
    copy (running) is stale, and A's outcome of attempt 1 is ignored."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (old,) = await claimed(a, 1, owner="node-a")
        assert path(await b.recover_expired(NOW + LEASE)) == [(S.RUNNING, S.RETRYING)]
        await b.promote_due(NOW + LEASE, 10)
        (again,) = await leased(b, 1, NOW + LEASE + 1, owner="node-a")
        assert (again.status, again.attempt, again.lease_owner) == (S.QUEUED, 1, "node-a")

        assert await a.finish([done(old, result="stale")], NOW + LEASE + 2) == []
        assert fields(await a.get(old.id)) == fields(again)
        (move,) = await a.finish([started(again, NOW + LEASE + 3)], NOW + LEASE + 3)
        assert (move.task.status, move.task.attempt) == (S.RUNNING, 2)


async def test_progress_another_node_wrote_is_kept_at_finish(shared_url: str) -> None:
    """A's leased copy is current in lease and attempt, but B wrote the task's progress
    (and renewed its lease) meanwhile: A's finish carries B's progress, as a fresh read
    would, into the returned task and the stored row."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (task,) = await claimed(a, 1, owner="node-a")
        await b.set_progress(task.id, 0.5, "half", NOW + 1)
        await b.heartbeat([task.id], "node-a", NOW + 600)
        running = await b.get(task.id)
        assert running is not None

        (move,) = await a.finish([done(task, result="ok")], NOW + 2)
        assert (move.task.progress, move.task.progress_message) == (0.5, "half")
        stored = await b.get(task.id)
        assert stored is not None
        assert fields(stored) == fields(move.task)
        assert (stored.progress, stored.progress_message) == (0.5, "half")


async def test_a_claim_another_node_heartbeat_starts_with_that_lease(shared_url: str) -> None:
    """A leased a claimed task; B renewed the lease (the same owner, as after a restart of
    A's store object): A's start carries B's expiry, as a fresh read would."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (task,) = await leased(a, 1, owner="node-a")
        assert task.id in a._logic._leased  # type: ignore[attr-defined]  # the path under test
        assert await b.heartbeat([task.id], "node-a", NOW + 600) == {task.id}

        (move,) = await a.finish([started(task, NOW + 1)], NOW + 1)
        assert (move.task.status, move.task.lease_expires_at) == (S.RUNNING, NOW + 600)
        assert fields(await b.get(task.id)) == fields(move.task)


async def test_a_claim_another_node_took_over_is_not_started(shared_url: str) -> None:
    """A's claim expires unstarted; B recovers it (no event) and claims it: A's start is
    ignored and forgotten, B's start applies to the row as it is."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (old,) = await leased(a, 1, owner="node-a")
        assert await b.recover_expired(NOW + LEASE) == []
        (fresh,) = await leased(b, 1, NOW + LEASE + 1, owner="node-b")
        assert (fresh.id, fresh.attempt, fresh.status) == (old.id, 0, S.QUEUED)

        assert await a.finish([started(old, NOW + LEASE + 2)], NOW + LEASE + 2) == []
        assert old.id not in a._logic._leased  # type: ignore[attr-defined]
        (move,) = await b.finish([started(fresh, NOW + LEASE + 4)], NOW + LEASE + 4)
        assert (move.task.lease_owner, move.task.attempt) == ("node-b", 1)
        assert fields(await a.get(old.id)) == fields(move.task)
        assert await statuses(a, old.id) == [S.PENDING, S.QUEUED, S.RUNNING]


async def test_a_claim_another_node_cancelled_is_not_started(shared_url: str) -> None:
    """A claims, B cancels, A reports the start (and the outcome): ignored."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": 1})], NOW)
        (task,) = await leased(a, 1, owner="node-a")
        assert path(await b.cancel(task.id, NOW + 1)) == [(S.QUEUED, S.CANCELLED)]
        reports = [started(task, NOW + 2), Outcome(task.id, "node-a", 1, S.COMPLETED)]
        assert await a.finish(reports, NOW + 2) == []
        stored = await a.get(task.id)
        assert stored is not None
        assert (stored.status, stored.lease_owner, stored.attempt) == (S.CANCELLED, None, 0)


async def test_leases_lost_to_another_node_are_forgotten(shared_url: str) -> None:
    """A keeps nothing for tasks it no longer holds: one B cancelled is dropped at A's next
    heartbeat, one B recovered and took is dropped when A's stale outcome comes in."""
    async with two_nodes(shared_url) as (a, b):
        await a.enqueue([NewTask("echo", {"n": n}) for n in (1, 2)], NOW)
        cancelled, taken = await claimed(a, 2, owner="node-a")
        leased = a._logic._leased  # type: ignore[attr-defined]
        assert {cancelled.id, taken.id} <= leased.keys()

        await b.cancel(cancelled.id, NOW + 1)
        assert await a.heartbeat([cancelled.id, taken.id], "node-a", NOW + 30) == {taken.id}
        assert cancelled.id not in leased and taken.id in leased

        assert path(await b.recover_expired(NOW + 31)) == [(S.RUNNING, S.RETRYING)]
        await b.promote_due(NOW + 31, 10)
        await claimed(b, 1, NOW + 32, owner="node-b")
        assert await a.finish([done(taken, result="stale")], NOW + 33) == []
        assert not leased
