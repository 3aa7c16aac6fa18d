"""Store.apply: a batch's new tasks, outcomes and claims, in that order, as one commit.

Every store (memory, SQLite, PostgreSQL) must give what the three kinds of call give one
after another; the SQL stores must also store nothing of a batch one of whose steps fails.
Time is passed in explicitly; tasks are compared field by field (``Task`` compares by
identity).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.integration.stores.kit import BOOM, LEASE, NOW, S, fields, path, run, started, steps

from trellis_actors.lifecycle import Task, Transition
from trellis_actors.stores import NewTask, Outcome, SqliteStore, Store, TaskFilter
from trellis_actors.stores.base import ClaimRequest, Work, WorkDone


def numbers(moves: list[Transition]) -> list[int]:
    """The ``n`` of each moved task's payload, in order."""
    return [move.task.payload["n"] for move in moves]


def claimed_numbers(tasks: list[Task]) -> list[int]:
    """The ``n`` of each claimed task's payload, in order."""
    return [task.payload["n"] for task in tasks]


# -- the same batch through apply and through separate calls ----------------------------


async def prepare(store: Store, queue: str) -> tuple[Task, Task]:
    """Three queued tasks in ``queue`` (n = 1, 2, 3): the first running under w1, the
    second claimed by w1 and not yet started."""
    news = [NewTask("echo", {"n": n}, queue=queue) for n in (1, 2, 3)]
    await store.enqueue(news, NOW)
    (first,) = await run(store, 1, queues=[queue])
    (second,) = await store.claim([queue], 1, "w1", NOW + LEASE, NOW)
    return first, second


def batch(queue: str, first: Task, second: Task) -> Work:
    key = f"{queue}-once"
    return Work(
        tasks=[
            NewTask("echo", {"n": 4}, queue=queue),
            NewTask("echo", {"n": 5}, queue=queue, run_at=NOW + 100),  # stays pending
            NewTask("echo", {"n": 6}, queue=queue, priority=5),
            NewTask("echo", {"n": 7}, queue=queue, idempotency_key=key),
            NewTask("echo", {"n": 8}, queue=queue, idempotency_key=key),  # a repeat
        ],
        outcomes=[
            Outcome(first.id, "w1", 1, S.COMPLETED, result={"answer": 42}),
            Outcome(second.id, "w9", 1, S.RUNNING),  # not the owner: ignored
            Outcome(second.id, "w1", 1, S.FAILED, error=BOOM, started_at=NOW + 0.5),  # starts it
            Outcome(first.id, "w1", 1, S.COMPLETED, result="again"),  # a repeat: ignored
            Outcome(second.id, "w9", 1, S.COMPLETED),  # not the owner: ignored
        ],
        claims=[
            ClaimRequest((queue,), 2, "w2", NOW + 1 + LEASE),
            ClaimRequest((queue,), 10, "w3", NOW + 1 + LEASE),
            ClaimRequest((queue,), 5, "w4", NOW + 1 + LEASE),  # nothing left for it
        ],
    )


def plain(task: Task, queue: str) -> dict[str, Any]:
    """A task's fields without what differs between two runs in two queues."""
    found = fields(task)
    found.pop("id")
    assert found.pop("queue") == queue
    if found["idempotency_key"] is not None:
        found["idempotency_key"] = found["idempotency_key"].removeprefix(f"{queue}-")
    return found


def plain_moves(moves: list[Transition], queue: str) -> list[tuple[Any, ...]]:
    out = []
    for task, event in moves:
        assert event.task_id == task.id
        out.append((plain(task, queue), event._replace(task_id="")))
    return out


def plain_done(done: WorkDone, queue: str) -> tuple[Any, ...]:
    return (
        [(plain(s.task, queue), s.created) for s in done.submitted],
        plain_moves(done.arrived, queue),
        plain_moves(done.finished, queue),
        [[plain(task, queue) for task in claimed] for claimed in done.claimed],
    )


async def test_apply_gives_what_separate_calls_give(store: Store) -> None:
    """enqueue, then finish, then each claim: apply answers as those calls do, in order."""
    applied_pair = await prepare(store, "a")
    separate_pair = await prepare(store, "b")

    applied = await store.apply(batch("a", *applied_pair), NOW + 1)

    work = batch("b", *separate_pair)
    submitted, arrived = await store.enqueue(work.tasks, NOW + 1)
    finished = await store.finish(work.outcomes, NOW + 1)
    claimed = [
        await store.claim(c.queues, c.limit, c.owner, c.lease_until, NOW + 1, c.exclude)
        for c in work.claims
    ]
    separate = WorkDone(submitted, arrived, finished, claimed)

    assert plain_done(applied, "a") == plain_done(separate, "b")

    # And what both give is right, not merely alike.
    assert [(s.task.payload["n"], s.created) for s in applied.submitted] == [
        (4, True), (5, True), (6, True), (7, True), (7, False),
    ]  # fmt: skip
    assert applied.submitted[4].task.id == applied.submitted[3].task.id
    assert numbers(applied.arrived) == [4, 4, 5, 6, 6, 7, 7]
    assert path(applied.arrived) == [
        (None, S.PENDING), (S.PENDING, S.QUEUED), (None, S.PENDING),
        (None, S.PENDING), (S.PENDING, S.QUEUED), (None, S.PENDING), (S.PENDING, S.QUEUED),
    ]  # fmt: skip
    assert numbers(applied.finished) == [1, 2, 2, 2]
    assert path(applied.finished) == [
        (S.RUNNING, S.COMPLETED),
        (S.QUEUED, S.RUNNING),
        (S.RUNNING, S.FAILED),
        (S.FAILED, S.DEAD),
    ]
    assert applied.finished[0].task.result == {"answer": 42}
    assert applied.finished[1].event.at == NOW + 0.5
    assert applied.finished[-1].task.attempt == 1
    # Claims in order: the priority-5 task, then FIFO (n=3 queued at NOW, before 4 and 7).
    # Claimed tasks stay queued, under the claimant's lease, no attempt counted.
    assert [claimed_numbers(tasks) for tasks in applied.claimed] == [[6, 3], [4, 7], []]
    for owner, tasks in zip(("w2", "w3"), applied.claimed, strict=False):
        for task in tasks:
            assert (task.status, task.lease_owner, task.attempt) == (S.QUEUED, owner, 0)
            assert task.lease_expires_at == NOW + 1 + LEASE

    # What apply returned is what is stored.
    latest = {move.task.id: move.task for move in applied.arrived + applied.finished}
    latest.update((task.id, task) for tasks in applied.claimed for task in tasks)
    for task_id, task in latest.items():
        assert fields(await store.get(task_id)) == fields(task)
    seven = applied.submitted[3].task.id
    assert steps(await store.events(seven)) == [(None, S.PENDING), (S.PENDING, S.QUEUED)]
    counts = await store.counts()
    assert counts.by_queue["a"] == counts.by_queue["b"]
    assert counts.by_queue["a"] == {"completed": 1, "dead": 1, "pending": 1, "queued": 4}


async def test_a_claim_sees_the_tasks_enqueued_in_the_same_apply(store: Store) -> None:
    """New tasks are stored before the claims run: an empty store's claim takes them."""
    work = Work(
        tasks=[
            NewTask("echo", {"n": 1}),
            NewTask("echo", {"n": 2}, run_at=NOW + 30),  # not due: not claimable
            NewTask("echo", {"n": 3}, queue="other"),
        ],
        claims=[ClaimRequest(None, 10, "w1", NOW + LEASE)],
    )
    done = await store.apply(work, NOW)
    (claimed,) = done.claimed
    assert claimed_numbers(claimed) == [1, 3]
    assert [task.id for task in claimed] == [
        done.submitted[0].task.id,
        done.submitted[2].task.id,
    ]
    assert done.finished == []
    for task in claimed:
        stored = await store.get(task.id)
        assert fields(stored) == fields(task)
        assert (task.status, task.lease_owner, task.attempt) == (S.QUEUED, "w1", 0)
        assert steps(await store.events(task.id)) == [(None, S.PENDING), (S.PENDING, S.QUEUED)]
    delayed = await store.get(done.submitted[1].task.id)
    assert delayed is not None and delayed.status is S.PENDING


async def test_claims_of_one_apply_never_share_a_task(store: Store) -> None:
    """Each claim takes what the ones before it left: together, every task once."""
    submitted, _ = await store.enqueue([NewTask("echo", {"n": n}) for n in range(5)], NOW)
    work = Work(
        claims=[
            ClaimRequest(None, 3, "w1", NOW + LEASE),
            ClaimRequest(None, 3, "w2", NOW + LEASE),
            ClaimRequest(None, 3, "w3", NOW + LEASE),
        ]
    )
    done = await store.apply(work, NOW + 1)
    assert (done.submitted, done.arrived, done.finished) == ([], [], [])
    first, second, third = done.claimed
    assert (claimed_numbers(first), claimed_numbers(second), third) == ([0, 1, 2], [3, 4], [])
    ids = [task.id for tasks in done.claimed for task in tasks]
    assert sorted(ids) == sorted(s.task.id for s in submitted)
    for owner, tasks in (("w1", first), ("w2", second)):
        for task in tasks:
            stored = await store.get(task.id)
            assert stored is not None and (stored.lease_owner, stored.attempt) == (owner, 0)
            assert stored.lease_expires_at == NOW + LEASE  # claimed once only


async def test_each_claim_of_an_apply_keeps_its_exclusions(store: Store) -> None:
    """A claim's excluded types are skipped by that claim only, and left for the next."""
    news = [NewTask(kind, {"n": n}) for n, kind in enumerate(["slow", "fast", "slow", "fast"])]
    await store.enqueue(news, NOW)
    work = Work(
        claims=[
            ClaimRequest(None, 10, "w1", NOW + LEASE, exclude=("slow",)),
            ClaimRequest(None, 1, "w2", NOW + LEASE),
            ClaimRequest(None, 10, "w3", NOW + LEASE, exclude=("slow", "fast")),
        ]
    )
    done = await store.apply(work, NOW)
    assert [claimed_numbers(tasks) for tasks in done.claimed] == [[1, 3], [0], []]
    assert claimed_numbers(await store.claim(None, 10, "w4", NOW + LEASE, NOW)) == [2]


async def test_an_empty_apply_does_nothing(store: Store) -> None:
    """No tasks, outcomes or claims: nothing returned, nothing stored."""
    done = await store.apply(Work(), NOW)
    assert done == WorkDone([], [], [], [])
    assert (await store.counts()).by_queue == {}


# -- SQLite: one transaction -------------------------------------------------------------


def fail_always(store: SqliteStore, method: str) -> None:
    """Make the store's ``method`` step (run inside apply's transaction) raise, the way a
    disk error would, until the instance attribute is deleted again."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    setattr(store._logic, method, fail)  # the instance attribute hides the method


async def snapshot(store: Store) -> tuple[Any, ...]:
    page = await store.list_tasks(TaskFilter(), 100, None)
    assert page.next_cursor is None
    tasks = [fields(task) for task in page.items]
    events = [await store.events(task["id"]) for task in tasks]
    return tasks, events, (await store.counts()).by_queue


@pytest.mark.parametrize("method", ["finish", "claim"])
async def test_sqlite_a_failed_step_stores_nothing_of_the_batch(
    tmp_path: Path, method: str
) -> None:
    """A step raising inside apply rolls the whole batch back: no new task, no outcome,
    no claim; the store then works on, and finishing the same task succeeds."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    await store.open()
    try:
        await store.enqueue([NewTask("echo", {"n": n}) for n in (1, 2, 3)], NOW)
        (held,) = await run(store, 1)
        (waiting,) = await store.claim(None, 1, "w1", NOW + LEASE, NOW)
        before = await snapshot(store)

        fail_always(store, method)
        work = Work(
            tasks=[NewTask("echo", {"n": 4}, idempotency_key="once"), NewTask("echo", {"n": 5})],
            outcomes=[
                Outcome(held.id, "w1", 1, S.COMPLETED, result="done"),
                started(waiting, NOW + 1),
            ],
            claims=[ClaimRequest(None, 5, "w2", NOW + 1 + LEASE)],
        )
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await store.apply(work, NOW + 1)
        assert await snapshot(store) == before

        # The store works on, the failing step still in place while it is not needed...
        (again,), _ = await store.enqueue([NewTask("echo", {"n": 6}, idempotency_key="once")], NOW)
        assert again.created  # the key's first use was rolled back
        # ...and once it is gone, the same batch goes through.
        delattr(store._logic, method)
        done = await store.apply(work, NOW + 2)
        assert [s.created for s in done.submitted] == [False, True]
        assert path(done.finished) == [(S.RUNNING, S.COMPLETED), (S.QUEUED, S.RUNNING)]
        assert done.finished[0].task.result == "done"
        assert claimed_numbers(done.claimed[0]) == [3, 6, 5]
        stored = await store.get(held.id)
        assert stored is not None and (stored.status, stored.result) == (S.COMPLETED, "done")
        assert [e.to_status for e in await store.events(held.id)] == [
            S.PENDING,
            S.QUEUED,
            S.RUNNING,
            S.COMPLETED,
        ]
        assert (await store.counts()).by_queue == {
            "default": {"completed": 1, "running": 1, "queued": 3}
        }
    finally:
        await store.close()
