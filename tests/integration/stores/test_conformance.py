"""The store contract: every store (memory, SQLite, PostgreSQL) passes all of it.

Time is passed in explicitly (``now``), so no clock is involved. Tasks are compared field by
field (``Task`` compares by identity).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.integration.stores.kit import (
    BOOM,
    LEASE,
    NOW,
    S,
    fields,
    path,
    run,
    settled,
    start,
    started,
    steps,
)

from trellis_actors.errors import InvalidTransition, TaskNotFound, ValidationError
from trellis_actors.lifecycle import Task, Transition
from trellis_actors.scheduling.model import Misfire, Schedule
from trellis_actors.stores import NewTask, Outcome, Store, TaskFilter


async def add(store: Store, now: float = NOW, **options: Any) -> Task:
    options.setdefault("type", "echo")
    options.setdefault("payload", {"n": 1})
    (submitted,), _ = await store.enqueue([NewTask(**options)], now)
    return submitted.task


async def claim(
    store: Store, now: float = NOW, owner: str = "w1", queues: list[str] | None = None
) -> Task:
    """One task claimed (leased to ``owner`` until ``now + LEASE``, still queued)."""
    claimed = await store.claim(queues, 1, owner, now + LEASE, now)
    assert len(claimed) == 1
    return claimed[0]


async def running(
    store: Store, now: float = NOW, owner: str = "w1", queues: list[str] | None = None
) -> Task:
    """One task claimed and started at ``now``."""
    (task,) = await run(store, 1, now, owner, queues)
    return task


async def end(store: Store, task: Task, status: S, now: float, **outcome: Any) -> list[Transition]:
    owner = outcome.pop("owner", task.lease_owner)
    attempt = outcome.pop("attempt", task.attempt)
    return await store.finish([Outcome(task.id, owner, attempt, status, **outcome)], now)


async def in_status(store: Store, status: S, **options: Any) -> Task:
    """A task brought to ``status`` through the protocol."""
    if status is S.PENDING:
        return await add(store, run_at=NOW + 100, **options)
    task = await add(store, **options)
    if status is S.QUEUED:
        return task
    task = await running(store)
    if status is S.RUNNING:
        return task
    if status is S.COMPLETED:
        return (await end(store, task, S.COMPLETED, NOW + 1))[-1].task
    if status is S.RETRYING:
        return (await end(store, task, S.RETRYING, NOW + 1, retry_at=NOW + 50))[-1].task
    assert status in (S.FAILED, S.DEAD), f"bring a task to {status} by hand"
    return (await end(store, task, S.FAILED, NOW + 1, error=BOOM))[-1].task


class TestEnqueue:
    async def test_a_due_task_is_queued_at_once(self, store: Store) -> None:
        """A task due now is created pending and queued in the same call."""
        (submitted,), moves = await store.enqueue([NewTask("echo", {"a": 1})], NOW)
        task = submitted.task
        assert submitted.created
        assert path(moves) == [(None, S.PENDING), (S.PENDING, S.QUEUED)]
        assert (task.status, task.run_at, task.queued_at, task.created_at) == (
            S.QUEUED,
            NOW,
            NOW,
            NOW,
        )
        assert (task.attempt, task.started_at, task.finished_at) == (0, None, None)
        assert fields(await store.get(task.id)) == fields(task)

    async def test_a_delayed_task_waits_pending(self, store: Store) -> None:
        """A task whose run_at is in the future stays pending and sets next_due_at."""
        (submitted,), moves = await store.enqueue([NewTask("echo", 1, run_at=NOW + 30)], NOW)
        assert path(moves) == [(None, S.PENDING)]
        assert submitted.task.status is S.PENDING
        assert submitted.task.queued_at is None
        assert await store.next_due_at() == NOW + 30

    async def test_every_field_round_trips(self, store: Store) -> None:
        """What was submitted is what is read back, JSON payloads included."""
        new = NewTask(
            type="report",
            payload={"rows": [1, 2.5, None, "x"], "nested": {"ok": True}},
            queue="reports",
            priority=7,
            max_attempts=5,
            timeout=12.5,
            idempotency_key="report-1",
            dead_letter=False,
            schedule_id="nightly",
            trace_context={"traceparent": "00-abc-def-01"},
        )
        (submitted,), _ = await store.enqueue([new], NOW)
        stored = await store.get(submitted.task.id)
        assert fields(stored) == fields(submitted.task)
        for name in ("type", "payload", "queue", "priority", "max_attempts", "timeout"):
            assert getattr(stored, name) == getattr(new, name)
        assert stored is not None
        assert (stored.dead_letter, stored.schedule_id) == (False, "nightly")
        assert stored.trace_context == {"traceparent": "00-abc-def-01"}

    async def test_a_batch_keeps_its_order(self, store: Store) -> None:
        """One call creates many tasks, in order, with ids that sort in that order."""
        submitted, moves = await store.enqueue([NewTask("echo", i) for i in range(5)], NOW)
        assert [s.task.payload for s in submitted] == [0, 1, 2, 3, 4]
        ids = [s.task.id for s in submitted]
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert len(moves) == 10

    async def test_an_idempotency_key_returns_the_existing_task(self, store: Store) -> None:
        """A second submit with the same key creates nothing and returns the first task."""
        first = await add(store, idempotency_key="once")
        (again,), moves = await store.enqueue([NewTask("echo", 2, idempotency_key="once")], NOW + 5)
        assert not again.created and moves == []
        assert fields(again.task) == fields(await store.get(first.id))
        assert (await store.counts()).total(S.QUEUED) == 1

    async def test_an_idempotency_key_repeated_in_one_batch(self, store: Store) -> None:
        """Within one batch, the repeat returns the task the batch just created."""
        batch = [NewTask("echo", i, idempotency_key="k") for i in range(2)]
        batch.append(NewTask("echo", 9))
        (first, repeat, other), moves = await store.enqueue(batch, NOW)
        assert (first.created, repeat.created, other.created) == (True, False, True)
        assert repeat.task.id == first.task.id and repeat.task.payload == 0
        assert len(moves) == 4


class TestDueWork:
    async def test_promote_due_queues_what_has_come_due(self, store: Store) -> None:
        """Pending tasks move to queued once run_at is reached, earliest first, up to limit."""
        late = await add(store, run_at=NOW + 20)
        early = await add(store, run_at=NOW + 10)
        assert await store.promote_due(NOW + 5, 10) == []
        moves = await store.promote_due(NOW + 30, 1)
        assert [m.task.id for m in moves] == [early.id]
        assert path(moves) == [(S.PENDING, S.QUEUED)]
        assert (moves[0].task.queued_at, moves[0].task.run_at) == (NOW + 30, NOW + 10)
        assert [m.task.id for m in await store.promote_due(NOW + 30, 10)] == [late.id]
        assert await store.next_due_at() is None

    async def test_next_due_at_is_the_earliest_waiting_task(self, store: Store) -> None:
        """Pending and retrying tasks both count; queued and running ones do not."""
        assert await store.next_due_at() is None
        await add(store)
        await add(store, run_at=NOW + 40)
        assert await store.next_due_at() == NOW + 40
        task = await running(store)
        await end(store, task, S.RETRYING, NOW + 1, retry_at=NOW + 25, error=BOOM)
        assert await store.next_due_at() == NOW + 25

    async def test_a_retrying_task_comes_back_when_due(self, store: Store) -> None:
        """A retry waits until retry_at, is promoted, and its next start is attempt 2."""
        await add(store)
        task = await running(store)
        (retry,) = await end(store, task, S.RETRYING, NOW + 1, retry_at=NOW + 10, error=BOOM)
        assert (retry.task.status, retry.task.run_at, retry.event.detail) == (
            S.RETRYING,
            NOW + 10,
            "boom",
        )
        assert retry.task.error == BOOM
        assert await store.claim(None, 5, "w1", NOW + 99, NOW + 5) == []
        assert path(await store.promote_due(NOW + 10, 5)) == [(S.RETRYING, S.QUEUED)]
        again = await claim(store, NOW + 11)
        assert (again.id, again.status, again.attempt) == (task.id, S.QUEUED, 1)
        (second,) = await start(store, [again], NOW + 12)
        assert (second.attempt, second.started_at) == (2, NOW + 12)


class TestClaim:
    async def test_a_claim_grants_a_lease(self, store: Store) -> None:
        """Claimed tasks stay queued under the owner's lease: no event, no attempt counted,
        still counted as queued; nobody else can claim them."""
        queued = await add(store)
        (task,) = await store.claim(None, 10, "w1", NOW + LEASE, NOW + 1)
        assert (task.id, task.status, task.attempt, task.started_at) == (
            queued.id,
            S.QUEUED,
            0,
            None,
        )
        assert (task.lease_owner, task.lease_expires_at) == ("w1", NOW + LEASE)
        unleased = {**fields(task), "lease_owner": None, "lease_expires_at": None}
        assert unleased == fields(queued)  # the lease is all a claim changes
        assert fields(await store.get(task.id)) == fields(task)
        assert steps(await store.events(task.id)) == [(None, S.PENDING), (S.PENDING, S.QUEUED)]
        assert (await store.counts()).by_queue == {"default": {"queued": 1}}
        assert await store.claim(None, 10, "w2", NOW + LEASE, NOW + 1) == []
        assert await store.claim(None, 10, "w1", NOW + LEASE, NOW + 1) == []  # held already
        assert fields(await store.get(task.id)) == fields(task)

    async def test_a_held_task_is_passed_over(self, store: Store) -> None:
        """A second claim skips what the first holds and takes the next task in line."""
        first = await add(store, priority=5)
        second = await add(store)
        assert (await claim(store, owner="w1")).id == first.id
        taken = await claim(store, NOW + 1, owner="w2")
        assert (taken.id, taken.lease_owner, taken.lease_expires_at) == (
            second.id,
            "w2",
            NOW + 1 + LEASE,
        )
        assert (await store.get(first.id)).lease_owner == "w1"  # type: ignore[union-attr]
        assert await store.claim(None, 10, "w3", NOW + LEASE, NOW + 2) == []

    @pytest.mark.parametrize("queues", [None, ["a"], ["a", "b"]])
    async def test_excluded_types_are_left_claimable(
        self, store: Store, queues: list[str] | None
    ) -> None:
        """Tasks of a type in ``exclude`` are skipped, not held: a later claim without the
        exclusion takes them, in their order."""
        x1 = await add(store, type="x", queue="a", priority=9)
        y1 = await add(store, type="y", queue="a")
        z1 = await add(store, type="z", queue="a")
        x2 = await add(store, type="x", queue="a")
        taken = await store.claim(queues, 10, "w1", NOW + LEASE, NOW, ("x", "nope"))
        assert [task.id for task in taken] == [y1.id, z1.id]
        for task in (x1, x2):
            stored = await store.get(task.id)
            assert fields(stored) == fields(task)
        assert await store.claim(queues, 10, "w2", NOW + LEASE, NOW, ("x",)) == []
        assert await store.claim(queues, 10, "w2", NOW + LEASE, NOW, ("x", "y", "z")) == []
        later = await store.claim(queues, 10, "w2", NOW + LEASE, NOW + 1, ("y",))
        assert [(task.id, task.lease_owner) for task in later] == [(x1.id, "w2"), (x2.id, "w2")]

    async def test_exclude_holds_back_only_what_it_names(self, store: Store) -> None:
        """An excluded type at the head of the line does not use up the limit."""
        for _ in range(3):
            await add(store, type="slow", priority=1)
        fast = [await add(store, type="fast") for _ in range(3)]
        taken = await store.claim(None, 2, "w1", NOW + LEASE, NOW, ["slow"])
        assert [task.id for task in taken] == [fast[0].id, fast[1].id]
        assert [task.type for task in await store.claim(None, 9, "w1", NOW + LEASE, NOW)] == [
            "slow",
            "slow",
            "slow",
            "fast",
        ]

    async def test_priority_first_then_first_in_first_out(self, store: Store) -> None:
        """Higher priority wins; equal priorities go by queued_at, then id."""
        low1 = await add(store, NOW, priority=0)
        high = await add(store, NOW + 1, priority=5)
        delayed = await add(store, NOW, priority=0, run_at=NOW + 3)  # older id, queued later
        low2 = await add(store, NOW + 2, priority=0)
        await store.promote_due(NOW + 3, 10)
        claimed = await store.claim(None, 10, "w1", NOW + LEASE, NOW + 4)
        assert [task.id for task in claimed] == [high.id, low1.id, low2.id, delayed.id]

    async def test_claims_take_only_the_given_queues_and_limit(self, store: Store) -> None:
        """Only tasks of the named queues are claimed, never more than the limit."""
        for queue in ("a", "b", "c", "a", "b"):
            await add(store, queue=queue)
        assert await store.claim([], 10, "w1", NOW + LEASE, NOW) == []
        assert await store.claim(["nope"], 10, "w1", NOW + LEASE, NOW) == []
        two = await store.claim(["a", "b"], 2, "w1", NOW + LEASE, NOW)
        assert [task.queue for task in two] == ["a", "b"]
        assert [t.queue for t in await store.claim(["c"], 10, "w1", NOW + LEASE, NOW)] == ["c"]
        assert [t.queue for t in await store.claim(["b", "a"], 10, "w1", NOW + LEASE, NOW)] == [
            "a",
            "b",
        ]

    async def test_priority_applies_across_queues(self, store: Store) -> None:
        """Claiming several queues orders by priority across all of them."""
        await add(store, queue="a", priority=1)
        urgent = await add(store, queue="b", priority=9)
        claimed = await store.claim(["a", "b"], 1, "w1", NOW + LEASE, NOW)
        assert [task.id for task in claimed] == [urgent.id]


class TestFinish:
    async def test_completed_stores_the_result(self, store: Store) -> None:
        """A completed task keeps its result, a finish time and no lease."""
        task = await in_status(store, S.RUNNING)
        (move,) = await end(store, task, S.COMPLETED, NOW + 2, result={"answer": 42})
        done = move.task
        assert path([move]) == [(S.RUNNING, S.COMPLETED)]
        assert (done.result, done.finished_at, done.lease_owner, done.lease_expires_at) == (
            {"answer": 42},
            NOW + 2,
            None,
            None,
        )
        assert fields(await store.get(task.id)) == fields(done)

    async def test_failed_goes_on_to_dead_with_dead_lettering(self, store: Store) -> None:
        """failed → dead in one call when the task type dead-letters."""
        task = await in_status(store, S.RUNNING)
        moves = await end(store, task, S.FAILED, NOW + 2, error=BOOM)
        assert path(moves) == [(S.RUNNING, S.FAILED), (S.FAILED, S.DEAD)]
        stored = await store.get(task.id)
        assert stored is not None and stored.status is S.DEAD
        assert stored.error == BOOM and stored.finished_at == NOW + 2

    async def test_failed_stays_failed_without_dead_lettering(self, store: Store) -> None:
        """Without dead-lettering a failed task stops at failed."""
        task = await in_status(store, S.RUNNING, dead_letter=False)
        moves = await end(store, task, S.FAILED, NOW + 2, error=BOOM)
        assert path(moves) == [(S.RUNNING, S.FAILED)]
        assert moves[0].event.detail == "boom"

    async def test_stale_outcomes_are_ignored(self, store: Store) -> None:
        """Wrong owner, wrong attempt, unknown task or a task no longer running: no move."""
        task = await in_status(store, S.RUNNING)
        assert await end(store, task, S.COMPLETED, NOW + 2, owner="w2") == []
        assert await end(store, task, S.COMPLETED, NOW + 2, attempt=2) == []
        ghost = Outcome("01900000-0000-7000-8000-000000000000", "w1", 1, S.COMPLETED)
        assert await store.finish([ghost], NOW + 2) == []
        await store.cancel(task.id, NOW + 3)
        assert await end(store, task, S.COMPLETED, NOW + 4) == []
        stored = await store.get(task.id)
        assert stored is not None and stored.status is S.CANCELLED

    async def test_outcomes_of_one_batch(self, store: Store) -> None:
        """Several outcomes in one call, of a started task and of one whose start was not
        recorded; a repeat of the same outcome is ignored."""
        await add(store)
        await add(store)
        one, two = await store.claim(None, 2, "w1", NOW + LEASE, NOW)
        await start(store, [one], NOW)
        outcomes = [
            Outcome(one.id, "w1", 1, S.COMPLETED, result=1),
            Outcome(two.id, "w1", 1, S.CANCELLED, started_at=NOW),
            Outcome(one.id, "w1", 1, S.COMPLETED, result=2),
            Outcome(two.id, "w1", 1, S.CANCELLED),
        ]
        moves = await store.finish(outcomes, NOW + 1)
        assert [move.task.id for move in moves] == [one.id, two.id, two.id]
        assert path(moves) == [
            (S.RUNNING, S.COMPLETED),
            (S.QUEUED, S.RUNNING),
            (S.RUNNING, S.CANCELLED),
        ]
        assert (await store.get(one.id)).result == 1  # type: ignore[union-attr]


class TestStart:
    """A claimed task becomes ``running`` when its lease holder reports the start."""

    async def test_a_start_makes_the_task_running(self, store: Store) -> None:
        """queued → running at the reported start time, one attempt further, the lease
        kept; one event."""
        await add(store)
        task = await claim(store)
        (move,) = await store.finish([started(task, NOW + 2)], NOW + 3)
        assert path([move]) == [(S.QUEUED, S.RUNNING)]
        running = move.task
        assert (running.status, running.attempt, running.started_at) == (S.RUNNING, 1, NOW + 2)
        assert (running.lease_owner, running.lease_expires_at) == ("w1", NOW + LEASE)
        assert (move.event.at, move.event.attempt, move.event.detail) == (NOW + 2, 1, None)
        assert fields(await store.get(task.id)) == fields(running)
        assert len(await store.events(task.id)) == 3
        assert (await store.counts()).by_queue == {"default": {"running": 1}}

    async def test_a_start_without_a_time_starts_now(self, store: Store) -> None:
        """A start report that gives no time starts the task at the call's ``now``."""
        await add(store)
        task = await claim(store)
        (move,) = await store.finish([started(task)], NOW + 4)
        assert (move.task.started_at, move.event.at) == (NOW + 4, NOW + 4)

    async def test_an_outcome_before_its_start_starts_the_task_first(self, store: Store) -> None:
        """An outcome for a claimed task whose start was not recorded: two events, queued
        → running at the outcome's ``started_at``, then running → the outcome."""
        await add(store)
        task = await claim(store)
        outcome = Outcome(task.id, "w1", 1, S.COMPLETED, result="ok", started_at=NOW + 2)
        first, second = await store.finish([outcome], NOW + 5)
        assert path([first, second]) == [(S.QUEUED, S.RUNNING), (S.RUNNING, S.COMPLETED)]
        assert (first.event.at, first.event.attempt) == (NOW + 2, 1)
        assert (second.event.at, second.event.attempt) == (NOW + 5, 1)
        done = second.task
        assert (done.attempt, done.started_at, done.finished_at, done.result) == (
            1,
            NOW + 2,
            NOW + 5,
            "ok",
        )
        assert (done.lease_owner, done.lease_expires_at) == (None, None)
        assert fields(await store.get(task.id)) == fields(done)
        assert steps(await store.events(task.id))[2:] == path([first, second])

    @pytest.mark.parametrize(
        ("status", "last"),
        [(S.RETRYING, S.RETRYING), (S.FAILED, S.DEAD), (S.CANCELLED, S.CANCELLED)],
    )
    async def test_every_outcome_may_come_before_its_start(
        self, store: Store, status: S, last: S
    ) -> None:
        """Retrying, failed (then dead) and cancelled outcomes start the task first too."""
        await add(store)
        task = await claim(store)
        outcome = Outcome(task.id, "w1", 1, status, error=BOOM, retry_at=NOW + 30)
        moves = await store.finish([outcome], NOW + 5)
        assert path(moves)[:2] == [(S.QUEUED, S.RUNNING), (S.RUNNING, status)]
        assert moves[0].task.started_at == NOW + 5  # no start time given: now
        assert moves[-1].task.status is last and moves[-1].task.attempt == 1
        assert fields(await store.get(task.id)) == fields(moves[-1].task)

    async def test_a_start_and_its_outcome_in_one_call(self, store: Store) -> None:
        """The outcome applies to the task its start (earlier in the call) made running."""
        await add(store)
        task = await claim(store)
        outcomes = [started(task, NOW + 1), Outcome(task.id, "w1", 1, S.COMPLETED, result=7)]
        moves = await store.finish(outcomes, NOW + 2)
        assert path(moves) == [(S.QUEUED, S.RUNNING), (S.RUNNING, S.COMPLETED)]
        assert (moves[-1].task.started_at, moves[-1].task.result) == (NOW + 1, 7)
        assert fields(await store.get(task.id)) == fields(moves[-1].task)

    async def test_reports_of_another_owner_or_attempt_are_ignored(self, store: Store) -> None:
        """Starts and outcomes for a claimed task from anyone but its holder, or for any
        attempt but the next one, change nothing."""
        await add(store)
        task = await claim(store)
        ignored = [
            Outcome(task.id, "w2", 1, S.RUNNING),
            Outcome(task.id, "w2", 1, S.COMPLETED),
            Outcome(task.id, "w1", 0, S.RUNNING),
            Outcome(task.id, "w1", 2, S.RUNNING),
            Outcome(task.id, "w1", 0, S.COMPLETED),
            Outcome(task.id, "w1", 2, S.FAILED, error=BOOM),
        ]
        for outcome in ignored:
            assert await store.finish([outcome], NOW + 1) == [], outcome
        assert await store.finish(ignored, NOW + 1) == []
        assert fields(await store.get(task.id)) == fields(task)
        assert len(await store.events(task.id)) == 2

    async def test_reports_for_tasks_nobody_holds_are_ignored(self, store: Store) -> None:
        """A start for a queued task that was never claimed, or for a waiting one, is
        ignored: only a claim lets a task start."""
        queued = await add(store)
        pending = await add(store, run_at=NOW + 100)
        for task in (queued, pending):
            for status in (S.RUNNING, S.COMPLETED):
                assert await store.finish([Outcome(task.id, "w1", 1, status)], NOW + 1) == []
            assert fields(await store.get(task.id)) == fields(task)

    async def test_a_second_start_is_ignored(self, store: Store) -> None:
        """A start for a task already running changes nothing, whatever its attempt."""
        task = await in_status(store, S.RUNNING)
        for attempt in (1, 2):
            report = Outcome(task.id, "w1", attempt, S.RUNNING, started_at=NOW + 9)
            assert await store.finish([report], NOW + 9) == []
        assert fields(await store.get(task.id)) == fields(task)
        assert len(await store.events(task.id)) == 3


class TestLeases:
    async def test_heartbeat_extends_held_leases(self, store: Store) -> None:
        """Only the owner's running tasks are extended and returned."""
        mine = await in_status(store, S.RUNNING)
        queued = await add(store)
        ghost = "01900000-0000-7000-8000-000000000000"
        held = await store.heartbeat([mine.id, queued.id, ghost, "not-an-id"], "w1", NOW + 500)
        assert held == {mine.id}
        assert (await store.get(mine.id)).lease_expires_at == NOW + 500  # type: ignore[union-attr]
        assert await store.heartbeat([mine.id], "w2", NOW + 900) == set()
        assert (await store.get(mine.id)).lease_expires_at == NOW + 500  # type: ignore[union-attr]

    async def test_heartbeat_extends_claimed_leases(self, store: Store) -> None:
        """A claimed task not yet started is held too: its lease is extended, so it
        outlives the first lease, and it stays queued."""
        await add(store)
        task = await claim(store)
        assert await store.heartbeat([task.id], "w2", NOW + 500) == set()
        assert await store.heartbeat([task.id], "w1", NOW + 500) == {task.id}
        stored = await store.get(task.id)
        assert fields(stored) == {**fields(task), "lease_expires_at": NOW + 500}
        assert await store.recover_expired(NOW + LEASE) == []
        assert (await store.get(task.id)).lease_owner == "w1"  # type: ignore[union-attr]
        (move,) = await store.finish([started(task)], NOW + LEASE + 1)
        assert move.task.lease_expires_at == NOW + 500

    async def test_release_gives_the_task_back_uncounted(self, store: Store) -> None:
        """Released tasks retry at once and the attempt is not counted."""
        task = await in_status(store, S.RUNNING)
        assert await store.release([task.id], "w2", NOW + 1) == []
        (move,) = await store.release([task.id], "w1", NOW + 1)
        assert path([move]) == [(S.RUNNING, S.RETRYING)]
        assert (move.task.attempt, move.task.run_at, move.task.lease_owner) == (0, NOW + 1, None)
        assert move.event.detail == "released at shutdown; the attempt is not counted"
        await store.promote_due(NOW + 1, 10)
        assert (await running(store, NOW + 2)).attempt == 1

    async def test_release_puts_a_claimed_task_back_as_it_was(self, store: Store) -> None:
        """A claimed task that never started goes back to the queue unchanged: no event,
        no attempt, claimable again (only its holder can release it)."""
        queued = await add(store)
        task = await claim(store)
        assert await store.release([task.id], "w2", NOW + 1) == []
        assert (await store.get(task.id)).lease_owner == "w1"  # type: ignore[union-attr]
        assert await store.release([task.id], "w1", NOW + 1) == []
        assert fields(await store.get(task.id)) == fields(queued)
        assert len(await store.events(task.id)) == 2
        assert (await store.counts()).by_queue == {"default": {"queued": 1}}
        assert await store.finish([started(task)], NOW + 2) == []  # no longer held
        again = await claim(store, NOW + 2, owner="w2")
        assert (again.id, again.attempt, again.lease_owner) == (task.id, 0, "w2")

    async def test_release_of_claimed_and_running_tasks_together(self, store: Store) -> None:
        """One release call: the running task retries (uncounted), the claimed one goes
        back to the queue; tasks another owner holds are left alone."""
        await add(store)
        await add(store)
        await add(store)
        task = await running(store)
        claimed = await claim(store)
        theirs = await claim(store, owner="w2")
        moves = await store.release([claimed.id, task.id, theirs.id], "w1", NOW + 1)
        assert [move.task.id for move in moves] == [task.id]
        assert path(moves) == [(S.RUNNING, S.RETRYING)]
        assert moves[0].task.attempt == 0
        back = await store.get(claimed.id)
        assert back is not None and (back.status, back.lease_owner, back.attempt) == (
            S.QUEUED,
            None,
            0,
        )
        assert fields(await store.get(theirs.id)) == fields(theirs)

    async def test_expired_leases_retry_while_attempts_remain(self, store: Store) -> None:
        """recover_expired: an expired lease becomes a retry, due at once."""
        task = await in_status(store, S.RUNNING)
        assert await store.recover_expired(NOW + LEASE - 1) == []
        (move,) = await store.recover_expired(NOW + LEASE)
        assert path([move]) == [(S.RUNNING, S.RETRYING)]
        assert (move.task.id, move.task.run_at, move.task.lease_owner) == (
            task.id,
            NOW + LEASE,
            None,
        )
        assert move.task.error is not None and move.task.error.type == "LeaseExpired"
        assert move.event.detail == "the lease held by w1 expired"

    @pytest.mark.parametrize(("dead_letter", "last"), [(True, S.DEAD), (False, S.FAILED)])
    async def test_expired_leases_fail_when_attempts_run_out(
        self, store: Store, dead_letter: bool, last: S
    ) -> None:
        """recover_expired: no attempts left means failed (and dead with dead-lettering)."""
        await in_status(store, S.RUNNING, max_attempts=1, dead_letter=dead_letter)
        moves = await store.recover_expired(NOW + LEASE)
        assert path(moves)[0] == (S.RUNNING, S.FAILED) and moves[-1].task.status is last

    async def test_an_expired_claim_costs_no_attempt(self, store: Store) -> None:
        """recover_expired: a claimed task that never started loses its lease and is
        claimable again as it was, even on its last attempt; no event; its old holder's
        start then comes too late."""
        queued = await add(store, max_attempts=1)
        task = await claim(store)
        assert await store.recover_expired(NOW + LEASE - 1) == []
        assert fields(await store.get(task.id)) == fields(task)
        assert await store.recover_expired(NOW + LEASE) == []
        assert fields(await store.get(task.id)) == fields(queued)
        assert len(await store.events(task.id)) == 2
        assert await store.heartbeat([task.id], "w1", NOW + 999) == set()
        assert await store.finish([started(task)], NOW + LEASE + 1) == []
        assert await store.recover_expired(NOW + 999) == []  # nothing held, nothing to do
        again = await claim(store, NOW + LEASE + 2, owner="w2")
        assert (again.id, again.attempt) == (task.id, 0)
        (move,) = await store.finish([started(again)], NOW + LEASE + 3)
        assert (move.task.attempt, move.task.lease_owner) == (1, "w2")

    async def test_recovery_of_claimed_and_running_tasks_together(self, store: Store) -> None:
        """One recovery: the running task retries, the claimed one goes back to the queue,
        a lease still valid is kept."""
        await add(store)
        await add(store)
        await add(store)
        task = await running(store)
        claimed = await claim(store)
        later = await claim(store, NOW + 10, owner="w2")
        moves = await store.recover_expired(NOW + LEASE)
        assert path(moves) == [(S.RUNNING, S.RETRYING)]
        assert moves[0].task.id == task.id
        back = await store.get(claimed.id)
        assert back is not None and (back.status, back.lease_owner, back.attempt) == (
            S.QUEUED,
            None,
            0,
        )
        assert fields(await store.get(later.id)) == fields(later)
        assert (await store.counts()).by_queue == {"default": {"queued": 2, "retrying": 1}}


class TestCancelAndRequeue:
    @pytest.mark.parametrize("status", [S.PENDING, S.QUEUED, S.RETRYING, S.RUNNING])
    async def test_cancel_what_is_not_finished(self, store: Store, status: S) -> None:
        """Pending, queued, retrying and running tasks can be cancelled."""
        task = await in_status(store, status)
        (move, *_) = await store.cancel(task.id, NOW + 9)
        assert path([move]) == [(status, S.CANCELLED)]
        assert (move.task.finished_at, move.task.lease_owner) == (NOW + 9, None)
        assert move.event.detail == "cancelled by request"
        assert fields(await store.get(task.id)) == fields(move.task)

    async def test_cancel_a_claimed_task(self, store: Store) -> None:
        """A claimed task is cancelled from queued, its lease cleared; its holder's later
        start, outcome, heartbeat or release change nothing."""
        await add(store)
        task = await claim(store)
        (move, *_) = await store.cancel(task.id, NOW + 2)
        assert path([move]) == [(S.QUEUED, S.CANCELLED)]
        cancelled = move.task
        assert (cancelled.lease_owner, cancelled.lease_expires_at) == (None, None)
        assert (cancelled.attempt, cancelled.started_at, cancelled.finished_at) == (
            0,
            None,
            NOW + 2,
        )
        assert fields(await store.get(task.id)) == fields(cancelled)
        late = [started(task, NOW + 1), Outcome(task.id, "w1", 1, S.COMPLETED, result="late")]
        assert await store.finish(late, NOW + 3) == []
        assert await store.heartbeat([task.id], "w1", NOW + 500) == set()
        assert await store.release([task.id], "w1", NOW + 4) == []
        assert await store.recover_expired(NOW + 999) == []
        assert await store.claim(None, 10, "w2", NOW + 999, NOW + 5) == []
        assert fields(await store.get(task.id)) == fields(cancelled)
        assert steps(await store.events(task.id))[2:] == [(S.QUEUED, S.CANCELLED)]
        assert (await store.counts()).by_queue == {"default": {"cancelled": 1}}

    @pytest.mark.parametrize("status", [S.COMPLETED, S.DEAD, S.CANCELLED])
    async def test_finished_tasks_cannot_be_cancelled(self, store: Store, status: S) -> None:
        """Cancelling a finished task is refused and changes nothing."""
        task = await in_status(store, S.QUEUED if status is S.CANCELLED else status)
        if status is S.CANCELLED:
            await store.cancel(task.id, NOW + 1)
        with pytest.raises(InvalidTransition, match=f"cannot move from {status} to cancelled"):
            await store.cancel(task.id, NOW + 9)
        assert (await store.get(task.id)).status is status  # type: ignore[union-attr]

    async def test_a_failed_task_cannot_be_cancelled(self, store: Store) -> None:
        """A failed task (no dead-lettering) may only move to dead."""
        task = await in_status(store, S.FAILED, dead_letter=False)
        with pytest.raises(InvalidTransition, match="from failed it may move to: dead"):
            await store.cancel(task.id, NOW + 9)

    async def test_unknown_tasks_are_not_found(self, store: Store) -> None:
        """cancel and requeue name the id they could not find."""
        for task_id in ("01900000-0000-7000-8000-000000000000", "not-an-id"):
            with pytest.raises(TaskNotFound, match=f"no task with id '{task_id}'"):
                await store.cancel(task_id, NOW)
            with pytest.raises(TaskNotFound, match="no task with id"):
                await store.requeue(task_id, NOW)
            assert await store.get(task_id) is None
            assert await store.events(task_id) == []

    async def test_requeue_a_dead_task(self, store: Store) -> None:
        """A dead task goes back to the queue with its attempts starting again."""
        task = await in_status(store, S.DEAD)
        move = await store.requeue(task.id, NOW + 5)
        assert path([move]) == [(S.DEAD, S.QUEUED)]
        fresh = move.task
        assert (fresh.attempt, fresh.error, fresh.result, fresh.finished_at) == (
            0,
            None,
            None,
            None,
        )
        assert (fresh.queued_at, fresh.run_at) == (NOW + 5, NOW + 5)
        assert (await running(store, NOW + 6)).attempt == 1

    async def test_only_dead_tasks_are_requeued(self, store: Store) -> None:
        """Requeueing anything but a dead task is refused."""
        for status in (S.COMPLETED, S.PENDING, S.RETRYING, S.QUEUED):
            task = await in_status(store, status)
            message = f"is {status.value}; only dead tasks can be requeued"
            with pytest.raises(InvalidTransition, match=message):
                await store.requeue(task.id, NOW + 5)
            assert (await store.get(task.id)).status is status  # type: ignore[union-attr]


class TestHistory:
    async def test_events_tell_the_whole_story_in_order(self, store: Store) -> None:
        """Every transition is an event: from, to, at, attempt and detail. Claims make
        none; a start does, reported alone or with the outcome."""
        task = await add(store, max_attempts=2)
        first = await claim(store, NOW + 1)
        await store.finish([started(first)], NOW + 2)
        await end(store, task, S.RETRYING, NOW + 3, attempt=1, owner="w1", error=BOOM)
        await store.promote_due(NOW + 4, 10)
        await claim(store, NOW + 5)
        await end(
            store, task, S.FAILED, NOW + 7, attempt=2, owner="w1", error=BOOM, started_at=NOW + 6
        )
        events = await store.events(task.id)
        assert [(e.from_status, e.to_status, e.at, e.attempt, e.detail) for e in events] == [
            (None, S.PENDING, NOW, 0, None),
            (S.PENDING, S.QUEUED, NOW, 0, None),
            (S.QUEUED, S.RUNNING, NOW + 2, 1, None),
            (S.RUNNING, S.RETRYING, NOW + 3, 1, "boom"),
            (S.RETRYING, S.QUEUED, NOW + 4, 1, None),
            (S.QUEUED, S.RUNNING, NOW + 6, 2, None),
            (S.RUNNING, S.FAILED, NOW + 7, 2, "boom"),
            (S.FAILED, S.DEAD, NOW + 7, 2, None),
        ]
        assert {e.task_id for e in events} == {task.id}

    async def test_progress_is_recorded_while_running(self, store: Store) -> None:
        """set_progress updates a running task only (not a queued one, claimed or not);
        it is kept while the task waits again, and cleared when the next attempt starts."""
        queued = await add(store)
        await store.set_progress(queued.id, 0.5, "ignored", NOW + 1)
        assert (await store.get(queued.id)).progress is None  # type: ignore[union-attr]
        claimed = await claim(store, NOW + 1)
        await store.set_progress(claimed.id, 0.5, "ignored", NOW + 1)
        assert fields(await store.get(claimed.id)) == fields(claimed)
        (task,) = await start(store, [claimed], NOW + 1)
        await store.set_progress(task.id, 0.25, "a quarter", NOW + 2)
        await store.set_progress("not-an-id", 0.5, None, NOW + 2)
        stored = await store.get(task.id)
        assert stored is not None
        assert (stored.progress, stored.progress_message, stored.updated_at) == (
            0.25,
            "a quarter",
            NOW + 2,
        )
        await store.release([task.id], "w1", NOW + 3)
        await store.promote_due(NOW + 3, 10)
        again = await claim(store, NOW + 4)
        assert (again.progress, again.progress_message) == (0.25, "a quarter")
        (restarted,) = await start(store, [again], NOW + 5)
        assert (restarted.progress, restarted.progress_message) == (None, None)
        assert fields(await store.get(task.id)) == fields(restarted)


class TestListing:
    async def test_newest_first_with_each_filter(self, store: Store) -> None:
        """Filters by status, type and queue, alone and together, newest first."""
        a = await add(store, type="x", queue="q1")
        b = await add(store, type="y", queue="q1")
        c = await add(store, type="x", queue="q2")
        d = await add(store, type="x", queue="q1", run_at=NOW + 50)

        async def ids(**filter: Any) -> list[str]:
            page = await store.list_tasks(TaskFilter(**filter), 10, None)
            assert page.next_cursor is None
            return [task.id for task in page.items]

        assert await ids() == [d.id, c.id, b.id, a.id]
        assert await ids(status=S.QUEUED) == [c.id, b.id, a.id]
        assert await ids(status=S.PENDING) == [d.id]
        assert await ids(type="x") == [d.id, c.id, a.id]
        assert await ids(queue="q1") == [d.id, b.id, a.id]
        assert await ids(queue="q1", type="x") == [d.id, a.id]
        assert await ids(status=S.QUEUED, queue="q1", type="x") == [a.id]
        assert await ids(status=S.QUEUED, type="y") == [b.id]
        assert await ids(status=S.DEAD) == []
        page = await store.list_tasks(TaskFilter(), 10, None)
        assert fields(page.items[-1]) == fields(await store.get(a.id))

    async def test_oldest_first_with_each_filter(self, store: Store) -> None:
        """Oldest first, by every listing's way in: none, status, queue, type and key."""
        a = await add(store, type="x", queue="q1")
        b = await add(store, type="y", queue="q1", idempotency_key="k")
        c = await add(store, type="x", queue="q2")
        d = await add(store, type="x", queue="q1", run_at=NOW + 50)

        async def ids(**filter: Any) -> list[str]:
            page = await store.list_tasks(TaskFilter(oldest_first=True, **filter), 10, None)
            assert page.next_cursor is None
            return [task.id for task in page.items]

        assert await ids() == [a.id, b.id, c.id, d.id]
        assert await ids(status=S.QUEUED) == [a.id, b.id, c.id]
        assert await ids(queue="q1") == [a.id, b.id, d.id]
        assert await ids(type="x") == [a.id, c.id, d.id]
        assert await ids(idempotency_key="k") == [b.id]
        page = await store.list_tasks(TaskFilter(oldest_first=True), 2, None)
        assert [task.id for task in page.items] == [a.id, b.id] and page.next_cursor == b.id
        page = await store.list_tasks(TaskFilter(oldest_first=True), 2, b.id)
        assert [task.id for task in page.items] == [c.id, d.id] and page.next_cursor is None

    @pytest.mark.parametrize("oldest_first", [False, True])
    @pytest.mark.parametrize(("total", "limit"), [(7, 3), (6, 3), (3, 5), (1, 1)])
    async def test_cursor_pages_cover_everything_once(
        self, store: Store, total: int, limit: int, oldest_first: bool
    ) -> None:
        """Pages follow each other without gaps or repeats, in either order; the last has
        no cursor."""
        submitted, _ = await store.enqueue([NewTask("echo", i) for i in range(total)], NOW)
        await add(store, type="other")  # filtered out below
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        listing = TaskFilter(type="echo", oldest_first=oldest_first)
        while True:
            page = await store.list_tasks(listing, limit, cursor)
            pages += 1
            assert 0 < len(page.items) <= limit
            seen += [task.id for task in page.items]
            if page.next_cursor is None:
                break
            assert page.next_cursor == page.items[-1].id
            cursor = page.next_cursor
        in_order = [s.task.id for s in submitted]
        assert seen == (in_order if oldest_first else in_order[::-1])
        assert pages == -(-total // limit)

    async def test_a_summary_leaves_out_payload_and_result(self, store: Store) -> None:
        """Without include, a listing's tasks have no payload nor result; the rest is the
        stored task's. Each field can be asked for alone."""
        done = await in_status(store, S.RUNNING, payload={"big": "x" * 1000})
        await end(store, done, S.COMPLETED, NOW + 2, result={"r": 1})
        stored = await store.get(done.id)
        assert stored is not None and stored.result == {"r": 1}

        async def only(*include: str) -> Task:
            (task,) = (await store.list_tasks(TaskFilter(), 10, None, frozenset(include))).items
            return task

        assert fields(await only()) == {**fields(stored), "payload": None, "result": None}
        assert fields(await only("payload")) == {**fields(stored), "result": None}
        assert fields(await only("result")) == {**fields(stored), "payload": None}
        assert fields(await only("payload", "result")) == fields(stored)

    @pytest.mark.parametrize("oldest_first", [False, True])
    @pytest.mark.parametrize("status", [None, S.QUEUED])
    async def test_included_data_stops_a_page_at_max_bytes(
        self, store: Store, status: S | None, oldest_first: bool
    ) -> None:
        """A page with payloads stops before they pass max_bytes (one task at least) and
        points at the rest; following the cursor reaches every task once."""
        submitted, _ = await store.enqueue(
            [NewTask("echo", {"n": i, "pad": "p" * 1000}) for i in range(7)], NOW
        )
        newest_first = [s.task.id for s in reversed(submitted)]
        both = frozenset({"payload", "result"})
        seen: list[str] = []
        cursor: str | None = None
        sizes = []
        while True:
            listing = TaskFilter(status=status, oldest_first=oldest_first)
            page = await store.list_tasks(listing, 10, cursor, both, 2500)
            sizes.append(len(page.items))
            assert all(task.payload["pad"] == "p" * 1000 for task in page.items)
            seen += [task.id for task in page.items]
            if page.next_cursor is None:
                break
            assert page.next_cursor == page.items[-1].id
            cursor = page.next_cursor
        assert seen == (newest_first[::-1] if oldest_first else newest_first)
        assert sizes == [2, 2, 2, 1]
        (one,) = (await store.list_tasks(TaskFilter(), 10, None, both, 10)).items
        assert one.id == newest_first[0]  # one task, whatever its size
        summaries = await store.list_tasks(TaskFilter(), 10, None, frozenset(), 10)
        assert len(summaries.items) == 7 and summaries.next_cursor is None


class TestEventFeed:
    async def test_every_event_once_in_order_from_any_point(self, store: Store) -> None:
        """events_after reads every task's events once, in pages; from any id read
        it goes on with exactly the events after it."""
        assert await store.last_event_id() == 0
        assert await store.events_after(0, 10) == []
        first = await add(store)
        second = await add(store, queue="b")
        done = await running(store)
        await end(store, done, S.COMPLETED, NOW + 1, result={"ok": True})
        await settled(store)
        read: list[Any] = []
        after = 0
        while page := await store.events_after(after, 3):
            assert len(page) <= 3
            read += page
            after = page[-1].id
        assert after == await store.last_event_id()
        ids = [r.id for r in read]
        assert len(set(ids)) == len(ids) == 6
        assert [(r.event.task_id, r.event.to_status) for r in read] == [
            (first.id, S.PENDING),
            (first.id, S.QUEUED),
            (second.id, S.PENDING),
            (second.id, S.QUEUED),
            (done.id, S.RUNNING),
            (done.id, S.COMPLETED),
        ]
        # The task as it stands now, with its data; the event as recorded.
        assert read[0].task.status is S.COMPLETED and read[0].task.result == {"ok": True}
        assert read[2].task.queue == "b" and read[4].event.node == "w1"
        seen = [(r.id, fields(r.task), r.event) for r in read]
        for index, recorded in enumerate(read):
            again = await store.events_after(recorded.id, 100)
            assert [(r.id, fields(r.task), r.event) for r in again] == seen[index + 1 :]
        assert await store.events_after(await store.last_event_id(), 100) == []

    async def test_ids_are_not_taken_again_after_a_purge(self, store: Store) -> None:
        """Deleting the newest events leaves their ids unused: a reader resuming after
        one of them still gets what is written next."""
        await add(store)
        dead = await in_status(store, S.DEAD)
        await settled(store)
        last = await store.last_event_id()
        assert await store.purge([dead.id]) == 1
        fresh = await add(store)
        await settled(store)
        after = await store.events_after(last, 10)
        assert [(r.event.task_id, r.event.to_status) for r in after] == [
            (fresh.id, S.PENDING),
            (fresh.id, S.QUEUED),
        ]
        assert all(r.id > last for r in after)

    async def test_a_pruned_id_resumes_at_the_oldest_kept(self, store: Store) -> None:
        """After an event deleted with its task, reading goes on from the next kept."""
        done = await in_status(store, S.COMPLETED)
        await settled(store)
        gone = (await store.events_after(0, 1))[0].id
        kept = await add(store)
        assert await store.prune({S.COMPLETED: NOW + 2}, 10) == 1
        await settled(store)
        read = await store.events_after(gone, 10)
        assert [r.event.task_id for r in read] == [kept.id, kept.id]
        assert done.id not in {r.task.id for r in await store.events_after(0, 10)}


class TestCountsAndRetention:
    async def test_counts_by_queue_and_status(self, store: Store) -> None:
        """Counts follow every move; a claimed task counts as queued until it starts."""
        assert (await store.counts()).by_queue == {}
        await add(store, queue="a")
        await add(store, queue="a")
        await add(store, queue="a")
        await add(store, queue="b", run_at=NOW + 10)
        await running(store, queues=["a"])
        claimed = await claim(store, queues=["a"])
        counts = await store.counts()
        assert counts.by_queue == {"a": {"queued": 2, "running": 1}, "b": {"pending": 1}}
        assert counts.total(S.QUEUED) == 2 and counts.total(S.DEAD) == 0
        await start(store, [claimed], NOW + 1)
        assert (await store.counts()).by_queue == {
            "a": {"queued": 1, "running": 2},
            "b": {"pending": 1},
        }

    async def test_prune_deletes_old_completed_and_dead_tasks_separately(
        self, store: Store
    ) -> None:
        """Each kind has its own cutoff; events go too; other statuses are never touched."""
        completed = await in_status(store, S.COMPLETED, idempotency_key="reuse-me")
        dead = await in_status(store, S.DEAD)
        queued = await add(store)
        assert await store.prune({}, 1000) == 0
        # finished at NOW + 1: not before it
        assert await store.prune({S.COMPLETED: NOW + 1}, 1000) == 0
        assert await store.prune({S.COMPLETED: NOW + 2}, 1000) == 1
        assert await store.get(completed.id) is None and await store.events(completed.id) == []
        assert await store.get(dead.id) is not None
        assert await store.prune({S.DEAD: NOW + 2}, 1000) == 1
        assert await store.get(dead.id) is None and await store.events(dead.id) == []
        assert await store.prune({S.COMPLETED: NOW + 99, S.DEAD: NOW + 99}, 1000) == 0
        assert (await store.counts()).by_queue == {"default": {"queued": 1}}
        page = await store.list_tasks(TaskFilter(), 10, None)
        assert [task.id for task in page.items] == [queued.id]
        (again,), _ = await store.enqueue([NewTask("echo", 1, idempotency_key="reuse-me")], NOW)
        assert again.created

    async def test_purge_deletes_only_the_dead_tasks_named(self, store: Store) -> None:
        """Dead tasks among the ids go, with their events; nothing else is touched."""
        dead = await in_status(store, S.DEAD)
        other_dead = await in_status(store, S.DEAD)
        done = await in_status(store, S.COMPLETED)
        ghost = "01900000-0000-7000-8000-000000000000"
        ids = [dead.id, done.id, dead.id, ghost, "not-an-id"]
        assert await store.purge(ids) == 1
        assert await store.get(dead.id) is None and await store.events(dead.id) == []
        assert await store.get(done.id) is not None and await store.get(other_dead.id) is not None
        assert await store.purge([dead.id]) == 0
        assert await store.purge([]) == 0
        assert (await store.counts()).by_queue == {"default": {"completed": 1, "dead": 1}}


def schedule(name: str, **changes: Any) -> Schedule:
    base = Schedule(
        id=f"id-{name}",
        name=name,
        task_type="echo",
        payload={"from": name},
        every=30.0,
        anchor=NOW,
        next_run_at=NOW + 30,
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(base, **changes)


class TestSchedules:
    async def test_every_field_round_trips(self, store: Store) -> None:
        """A saved schedule reads back equal, whatever its kind."""
        cron = schedule(
            "nightly",
            every=None,
            cron="0 3 * * *",
            timezone="Europe/Paris",
            queue="reports",
            priority=3,
            paused=True,
            misfire=Misfire.RUN_ONCE,
            last_run_at=NOW - 5,
        )
        once = schedule("once", every=None, at=NOW + 99, next_run_at=NOW + 99, payload=None)
        for saved in (cron, once, schedule("tick")):
            assert await store.save_schedule(saved) == saved
            assert await store.get_schedule(saved.id) == saved
        assert await store.get_schedule("id-missing") is None

    async def test_saving_again_replaces_by_id(self, store: Store) -> None:
        """The same id saved twice is one schedule, changed."""
        await store.save_schedule(schedule("tick"))
        renamed = schedule("tock", every=60.0, paused=True, updated_at=NOW + 1)
        await store.save_schedule(dataclasses.replace(renamed, id="id-tick"))
        assert [s.name for s in await store.list_schedules()] == ["tock"]
        stored = await store.get_schedule("id-tick")
        assert stored is not None and (stored.every, stored.paused) == (60.0, True)

    async def test_names_are_unique(self, store: Store) -> None:
        """Another schedule may not take a used name; the field is named."""
        await store.save_schedule(schedule("tick"))
        with pytest.raises(ValidationError, match="a schedule named 'tick' already exists") as err:
            await store.save_schedule(schedule("tick", id="id-other"))
        assert err.value.field == "name"
        assert [s.id for s in await store.list_schedules()] == ["id-tick"]

    async def test_listed_by_name_and_deleted(self, store: Store) -> None:
        """Listing is in code point order of names; delete says whether it removed one."""
        for name in ("b", "a", "B"):
            await store.save_schedule(schedule(name))
        assert [s.name for s in await store.list_schedules()] == ["B", "a", "b"]
        assert await store.delete_schedule("id-a") is True
        assert await store.delete_schedule("id-a") is False
        assert [s.name for s in await store.list_schedules()] == ["B", "b"]

    async def test_advance_only_from_the_expected_slot(self, store: Store) -> None:
        """Two schedulers cannot both advance one slot; fired_at becomes last_run_at."""
        await store.save_schedule(schedule("tick"))
        assert await store.advance_schedule("id-tick", NOW + 30, NOW + 60, NOW + 31) is True
        assert await store.advance_schedule("id-tick", NOW + 30, NOW + 60, NOW + 31) is False
        stored = await store.get_schedule("id-tick")
        assert stored is not None and (stored.next_run_at, stored.last_run_at) == (
            NOW + 60,
            NOW + 31,
        )
        assert await store.advance_schedule("id-tick", NOW + 60, None, None) is True
        stored = await store.get_schedule("id-tick")
        assert stored is not None and (stored.next_run_at, stored.last_run_at) == (None, NOW + 31)
        assert await store.advance_schedule("id-tick", None, NOW + 90, None) is True
        assert await store.advance_schedule("id-missing", None, NOW, None) is False
