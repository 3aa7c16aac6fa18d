"""The store contract: every store (memory, SQLite, PostgreSQL) passes all of it.

Time is passed in explicitly (``now``), so no clock is involved. Tasks are compared field by
field (``Task`` compares by identity).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.integration.stores.kit import BOOM, LEASE, NOW, S, fields, path

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
    moves = await store.claim(queues, 1, owner, now + LEASE, now)
    assert len(moves) == 1
    return moves[0].task


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
    task = await claim(store)
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
        running = await claim(store)
        await end(store, running, S.RETRYING, NOW + 1, retry_at=NOW + 25, error=BOOM)
        assert await store.next_due_at() == NOW + 25

    async def test_a_retrying_task_comes_back_when_due(self, store: Store) -> None:
        """A retry waits until retry_at, is promoted, and its next claim is attempt 2."""
        await add(store)
        task = await claim(store)
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
        assert (again.id, again.attempt) == (task.id, 2)


class TestClaim:
    async def test_a_claim_grants_a_lease(self, store: Store) -> None:
        """Claimed tasks are running under the owner's lease, one attempt further."""
        queued = await add(store)
        (move,) = await store.claim(None, 10, "w1", NOW + LEASE, NOW + 1)
        task = move.task
        assert path([move]) == [(S.QUEUED, S.RUNNING)]
        assert (task.id, task.status, task.attempt, task.started_at) == (
            queued.id,
            S.RUNNING,
            1,
            NOW + 1,
        )
        assert (task.lease_owner, task.lease_expires_at) == ("w1", NOW + LEASE)
        assert move.event.attempt == 1
        assert fields(await store.get(task.id)) == fields(task)
        assert await store.claim(None, 10, "w2", NOW + LEASE, NOW + 1) == []

    async def test_priority_first_then_first_in_first_out(self, store: Store) -> None:
        """Higher priority wins; equal priorities go by queued_at, then id."""
        low1 = await add(store, NOW, priority=0)
        high = await add(store, NOW + 1, priority=5)
        delayed = await add(store, NOW, priority=0, run_at=NOW + 3)  # older id, queued later
        low2 = await add(store, NOW + 2, priority=0)
        await store.promote_due(NOW + 3, 10)
        moves = await store.claim(None, 10, "w1", NOW + LEASE, NOW + 4)
        assert [m.task.id for m in moves] == [high.id, low1.id, low2.id, delayed.id]

    async def test_claims_take_only_the_given_queues_and_limit(self, store: Store) -> None:
        """Only tasks of the named queues are claimed, never more than the limit."""
        for queue in ("a", "b", "c", "a", "b"):
            await add(store, queue=queue)
        assert await store.claim([], 10, "w1", NOW + LEASE, NOW) == []
        assert await store.claim(["nope"], 10, "w1", NOW + LEASE, NOW) == []
        two = await store.claim(["a", "b"], 2, "w1", NOW + LEASE, NOW)
        assert [m.task.queue for m in two] == ["a", "b"]
        assert [m.task.queue for m in await store.claim(["c"], 10, "w1", NOW + LEASE, NOW)] == ["c"]
        assert [
            m.task.queue for m in await store.claim(["b", "a"], 10, "w1", NOW + LEASE, NOW)
        ] == [
            "a",
            "b",
        ]

    async def test_priority_applies_across_queues(self, store: Store) -> None:
        """Claiming several queues orders by priority across all of them."""
        await add(store, queue="a", priority=1)
        urgent = await add(store, queue="b", priority=9)
        moves = await store.claim(["a", "b"], 1, "w1", NOW + LEASE, NOW)
        assert [m.task.id for m in moves] == [urgent.id]


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
        """Several outcomes in one call; a repeat of the same outcome is ignored."""
        await add(store)
        await add(store)
        one, two = [m.task for m in await store.claim(None, 2, "w1", NOW + LEASE, NOW)]
        outcomes = [
            Outcome(one.id, "w1", 1, S.COMPLETED, result=1),
            Outcome(two.id, "w1", 1, S.CANCELLED),
            Outcome(one.id, "w1", 1, S.COMPLETED, result=2),
        ]
        moves = await store.finish(outcomes, NOW + 1)
        assert path(moves) == [(S.RUNNING, S.COMPLETED), (S.RUNNING, S.CANCELLED)]
        assert (await store.get(one.id)).result == 1  # type: ignore[union-attr]


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

    async def test_release_gives_the_task_back_uncounted(self, store: Store) -> None:
        """Released tasks retry at once and the attempt is not counted."""
        task = await in_status(store, S.RUNNING)
        assert await store.release([task.id], "w2", NOW + 1) == []
        (move,) = await store.release([task.id], "w1", NOW + 1)
        assert path([move]) == [(S.RUNNING, S.RETRYING)]
        assert (move.task.attempt, move.task.run_at, move.task.lease_owner) == (0, NOW + 1, None)
        assert move.event.detail == "released at shutdown; the attempt is not counted"
        await store.promote_due(NOW + 1, 10)
        assert (await claim(store, NOW + 2)).attempt == 1

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


class TestCancelAndRequeue:
    @pytest.mark.parametrize("status", [S.PENDING, S.QUEUED, S.RETRYING, S.RUNNING])
    async def test_cancel_what_is_not_finished(self, store: Store, status: S) -> None:
        """Pending, queued, retrying and running tasks can be cancelled."""
        task = await in_status(store, status)
        move = await store.cancel(task.id, NOW + 9)
        assert path([move]) == [(status, S.CANCELLED)]
        assert (move.task.finished_at, move.task.lease_owner) == (NOW + 9, None)
        assert move.event.detail == "cancelled by request"
        assert fields(await store.get(task.id)) == fields(move.task)

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
        assert (await claim(store, NOW + 6)).attempt == 1

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
        """Every transition is an event: from, to, at, attempt and detail."""
        task = await add(store, max_attempts=2)
        await claim(store, NOW + 1)
        await end(store, task, S.RETRYING, NOW + 2, attempt=1, owner="w1", error=BOOM)
        await store.promote_due(NOW + 3, 10)
        await claim(store, NOW + 4)
        await end(store, task, S.FAILED, NOW + 5, attempt=2, owner="w1", error=BOOM)
        events = await store.events(task.id)
        assert [(e.from_status, e.to_status, e.at, e.attempt, e.detail) for e in events] == [
            (None, S.PENDING, NOW, 0, None),
            (S.PENDING, S.QUEUED, NOW, 0, None),
            (S.QUEUED, S.RUNNING, NOW + 1, 1, None),
            (S.RUNNING, S.RETRYING, NOW + 2, 1, "boom"),
            (S.RETRYING, S.QUEUED, NOW + 3, 1, None),
            (S.QUEUED, S.RUNNING, NOW + 4, 2, None),
            (S.RUNNING, S.FAILED, NOW + 5, 2, "boom"),
            (S.FAILED, S.DEAD, NOW + 5, 2, None),
        ]
        assert {e.task_id for e in events} == {task.id}

    async def test_progress_is_recorded_while_running(self, store: Store) -> None:
        """set_progress updates a running task only; a new claim clears it."""
        queued = await add(store)
        await store.set_progress(queued.id, 0.5, "ignored", NOW + 1)
        assert (await store.get(queued.id)).progress is None  # type: ignore[union-attr]
        task = await claim(store, NOW + 1)
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
        assert (again.progress, again.progress_message) == (None, None)


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

    @pytest.mark.parametrize(("total", "limit"), [(7, 3), (6, 3), (3, 5), (1, 1)])
    async def test_cursor_pages_cover_everything_once(
        self, store: Store, total: int, limit: int
    ) -> None:
        """Pages follow each other without gaps or repeats; the last has no cursor."""
        submitted, _ = await store.enqueue([NewTask("echo", i) for i in range(total)], NOW)
        await add(store, type="other")  # filtered out below
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await store.list_tasks(TaskFilter(type="echo"), limit, cursor)
            pages += 1
            assert 0 < len(page.items) <= limit
            seen += [task.id for task in page.items]
            if page.next_cursor is None:
                break
            assert page.next_cursor == page.items[-1].id
            cursor = page.next_cursor
        assert seen == [s.task.id for s in reversed(submitted)]
        assert pages == -(-total // limit)


class TestCountsAndRetention:
    async def test_counts_by_queue_and_status(self, store: Store) -> None:
        """Counts follow every move."""
        assert (await store.counts()).by_queue == {}
        await add(store, queue="a")
        await add(store, queue="a")
        await add(store, queue="b", run_at=NOW + 10)
        await claim(store, queues=["a"])
        counts = await store.counts()
        assert counts.by_queue == {"a": {"queued": 1, "running": 1}, "b": {"pending": 1}}
        assert counts.total(S.QUEUED) == 1 and counts.total(S.DEAD) == 0

    async def test_prune_deletes_old_completed_and_dead_tasks_separately(
        self, store: Store
    ) -> None:
        """Each kind has its own cutoff; events go too; other statuses are never touched."""
        completed = await in_status(store, S.COMPLETED, idempotency_key="reuse-me")
        dead = await in_status(store, S.DEAD)
        queued = await add(store)
        assert await store.prune(None, None) == 0
        assert await store.prune(NOW + 1, None) == 0  # finished at NOW + 1: not before it
        assert await store.prune(NOW + 2, None) == 1
        assert await store.get(completed.id) is None and await store.events(completed.id) == []
        assert await store.get(dead.id) is not None
        assert await store.prune(None, NOW + 2) == 1
        assert await store.get(dead.id) is None and await store.events(dead.id) == []
        assert await store.prune(NOW + 99, NOW + 99) == 0
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
