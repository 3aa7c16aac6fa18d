"""The store contract for workflows: every store (memory, SQLite, PostgreSQL) passes it.

A workflow's continuation is reported as its attempt's outcome (``waiting`` or an end)
with what it recorded and started; a step's end is written into its workflow's history
and wakes it, in the same call; signals are kept until received.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.stores.kit import BOOM, LEASE, NOW, S, path, run

from trellis_actors.decisions import NEVER
from trellis_actors.errors import TaskNotFound
from trellis_actors.lifecycle import Task
from trellis_actors.stores import NewTask, Outcome, Store
from trellis_actors.workflows import (
    Continuation,
    EntryKind,
    EntryOutcome,
    HistoryEntry,
    Resolution,
    WorkflowEnded,
)


async def running_workflow(store: Store, now: float = NOW) -> Task:
    (submitted,), _ = await store.enqueue([NewTask("flow", {"n": 1})], now)
    (task,) = await run(store, 1, now)
    assert task.id == submitted.task.id
    return task


def step_continuation(workflow: Task, seq: int = 1, *, awaiting: bool = True) -> Continuation:
    """The continuation of a run that started one step (``seq``) and waits for it."""
    entry = HistoryEntry(workflow.id, seq, EntryKind.STEP, name="echo", recorded_at=NOW)
    return Continuation(
        entries=(entry,),
        steps=(NewTask("echo", {"step": seq}, queue="steps", parent_id=workflow.id),),
        awaiting_steps=(seq,) if awaiting else (),
    )


def waiting(task: Task, continuation: Continuation, wake_at: float | None = None) -> Outcome:
    assert task.lease_owner is not None
    return Outcome(
        task.id,
        task.lease_owner,
        task.attempt,
        S.WAITING,
        retry_at=wake_at,
        workflow=continuation,
    )


class TestContinuations:
    async def test_a_step_is_started_with_the_suspend(self, store: Store) -> None:
        """One call: the history entry, the step task (linked), the workflow waiting,
        its attempt not counted, with no timer."""
        flow = await running_workflow(store)
        moves = await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        assert path(moves) == [(S.RUNNING, S.WAITING), (None, S.PENDING), (S.PENDING, S.QUEUED)]
        state = await store.workflow(flow.id)
        assert state is not None
        assert state.task.status is S.WAITING and state.task.attempt == 0
        assert state.task.run_at == NEVER and state.task.lease_owner is None
        (step,) = state.steps
        assert step.parent_id == flow.id and step.payload == {"step": 1}
        (entry,) = state.history
        assert (entry.kind, entry.name, entry.step_id, entry.outcome) == (
            EntryKind.STEP,
            "echo",
            step.id,
            None,
        )
        assert await store.next_due_at() is None  # no timer: nothing falls due

    async def test_a_step_that_ends_wakes_its_workflow(self, store: Store) -> None:
        """The step's end, its history entry and its workflow's wake-up: one call."""
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        (step,) = await run(store, 1, NOW + 2)
        done = Outcome(step.id, "w1", 1, S.COMPLETED, result={"ok": True})
        moves = await store.finish([done], NOW + 3)
        assert path(moves) == [(S.RUNNING, S.COMPLETED), (S.WAITING, S.QUEUED)]
        state = await store.workflow(flow.id)
        assert state is not None and state.task.status is S.QUEUED
        (entry,) = state.history
        assert (entry.outcome, entry.value, entry.resolved_at) == (
            EntryOutcome.COMPLETED,
            {"ok": True},
            NOW + 3,
        )

    async def test_a_step_that_fails_is_recorded_with_its_error(self, store: Store) -> None:
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        (step,) = await run(store, 1, NOW + 2)
        await store.finish([Outcome(step.id, "w1", 1, S.FAILED, error=BOOM)], NOW + 3)
        state = await store.workflow(flow.id)
        assert state is not None
        (entry,) = state.history
        assert entry.outcome is EntryOutcome.FAILED
        assert entry.error is not None and entry.error.message == "boom"

    async def test_no_lost_wake_up(self, store: Store) -> None:
        """A step that ended while its workflow ran: the suspend that waits for it goes
        straight back to the queue."""
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow), NOW + 2)], NOW + 1)
        assert path(await store.promote_due(NOW + 2, 10)) == [(S.WAITING, S.QUEUED)]  # runs again
        (again,) = await run(store, 1, NOW + 3, queues=["default"])
        (step,) = await run(store, 1, NOW + 3, queues=["steps"])
        done = await store.finish([Outcome(step.id, "w1", 1, S.COMPLETED, result=1)], NOW + 4)
        assert path(done) == [(S.RUNNING, S.COMPLETED)]  # its workflow runs: no wake
        moves = await store.finish([waiting(again, Continuation(awaiting_steps=(1,)))], NOW + 5)
        assert path(moves) == [(S.RUNNING, S.WAITING), (S.WAITING, S.QUEUED)]

    async def test_a_timer_falls_due(self, store: Store) -> None:
        """A workflow waiting with a wake time is promoted like a delayed task."""
        flow = await running_workflow(store)
        sleep = HistoryEntry(flow.id, 1, EntryKind.SLEEP, wake_at=NOW + 100, recorded_at=NOW)
        await store.finish([waiting(flow, Continuation((sleep,)), NOW + 100)], NOW + 1)
        assert await store.next_due_at() == NOW + 100
        assert await store.promote_due(NOW + 99, 10) == []
        moves = await store.promote_due(NOW + 100, 10)
        assert path(moves) == [(S.WAITING, S.QUEUED)]
        (again,) = await run(store, 1, NOW + 100)
        elapsed = Continuation(resolved=(Resolution(1, EntryOutcome.ELAPSED),))
        assert again.lease_owner is not None
        done = Outcome(
            again.id, again.lease_owner, again.attempt, S.COMPLETED, result=1, workflow=elapsed
        )
        moves = await store.finish([done], NOW + 101)
        assert path(moves) == [(S.RUNNING, S.COMPLETED)]
        state = await store.workflow(flow.id)
        assert state is not None and state.history[0].outcome is EntryOutcome.ELAPSED
        assert state.task.attempt == 1

    async def test_an_outcome_without_the_lease_writes_nothing(self, store: Store) -> None:
        flow = await running_workflow(store)
        stale = Outcome(flow.id, "someone else", 1, S.WAITING, workflow=step_continuation(flow))
        assert await store.finish([stale], NOW + 1) == []
        state = await store.workflow(flow.id)
        assert state is not None and state.history == [] and state.steps == []


class TestSignals:
    async def test_kept_received_and_waking(self, store: Store) -> None:
        flow = await running_workflow(store)
        wait = HistoryEntry(flow.id, 1, EntryKind.SIGNAL, name="go", recorded_at=NOW)
        await store.finish(
            [waiting(flow, Continuation((wait,), awaiting_signals=("go",)))], NOW + 1
        )
        # Kept, but no reason to run again: it does not wait for "other".
        assert await store.signal(flow.id, "other", None, NOW + 2) == []
        assert path(await store.signal(flow.id, "go", {"n": 0}, NOW + 2)) == [(S.WAITING, S.QUEUED)]
        (again,) = await run(store, 1, NOW + 3)
        # A signal sent while it runs is kept; its continuation still waits for "go".
        assert await store.signal(flow.id, "go", {"n": 1}, NOW + 4) == []
        moves = await store.finish(
            [waiting(again, Continuation(awaiting_signals=("go",)))], NOW + 5
        )
        assert path(moves) == [(S.RUNNING, S.WAITING), (S.WAITING, S.QUEUED)]
        state = await store.workflow(flow.id)
        assert state is not None
        assert [(s.name, s.payload, s.consumed_by) for s in state.signals] == [
            ("other", None, None),
            ("go", {"n": 0}, None),
            ("go", {"n": 1}, None),
        ]
        (third,) = await run(store, 1, NOW + 6)
        received = Continuation(
            resolved=(Resolution(1, EntryOutcome.RECEIVED, {"n": 0}),),
            consumed=((state.signals[1].id, 1),),
        )
        assert third.lease_owner is not None
        await store.finish(
            [Outcome(third.id, third.lease_owner, third.attempt, S.COMPLETED, workflow=received)],
            NOW + 7,
        )
        state = await store.workflow(flow.id)
        assert state is not None
        assert [s.consumed_by for s in state.signals] == [None, 1, None]
        assert state.history[0].outcome is EntryOutcome.RECEIVED
        assert state.history[0].value == {"n": 0}
        with pytest.raises(WorkflowEnded, match="can no longer receive signals"):
            await store.signal(flow.id, "go", None, NOW + 8)

    @pytest.mark.parametrize("task_id", ["nope", "0190b6f0-0000-7000-8000-000000000000"])
    async def test_unknown(self, store: Store, task_id: str) -> None:
        with pytest.raises(TaskNotFound):
            await store.signal(task_id, "go", None, NOW)
        assert await store.workflow(task_id) is None


class TestCancel:
    async def test_cancelling_a_workflow_cancels_its_steps(self, store: Store) -> None:
        flow = await running_workflow(store)
        cont = step_continuation(flow)
        two = HistoryEntry(flow.id, 2, EntryKind.STEP, name="echo", recorded_at=NOW)
        cont = Continuation(
            (*cont.entries, two),
            (*cont.steps, NewTask("echo", {"step": 2}, parent_id=flow.id)),
            awaiting_steps=(1, 2),
        )
        await store.finish([waiting(flow, cont)], NOW + 1)
        (step,) = await run(store, 1, NOW + 2)  # one step runs, the other waits
        moves = await store.cancel(flow.id, NOW + 3)
        assert moves[0].task.id == flow.id
        assert sorted(path(moves)) == sorted(
            [(S.WAITING, S.CANCELLED), (S.RUNNING, S.CANCELLED), (S.QUEUED, S.CANCELLED)]
        )
        state = await store.workflow(flow.id)
        assert state is not None
        assert [s.status for s in state.steps] == [S.CANCELLED, S.CANCELLED]
        assert [e.outcome for e in state.history] == [EntryOutcome.FAILED] * 2
        assert state.history[0].error is not None
        # The running step's late outcome changes nothing.
        late = Outcome(step.id, "w1", 1, S.COMPLETED, result=1)
        assert await store.finish([late], NOW + 4) == []

    async def test_cancelling_a_step_wakes_its_workflow(self, store: Store) -> None:
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        state = await store.workflow(flow.id)
        assert state is not None
        moves = await store.cancel(state.steps[0].id, NOW + 2)
        assert path(moves) == [(S.QUEUED, S.CANCELLED), (S.WAITING, S.QUEUED)]

    async def test_deleting_a_workflow_deletes_its_history(self, store: Store) -> None:
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        await store.signal(flow.id, "x", 1, NOW + 1)
        await store.cancel(flow.id, NOW + 2)
        assert await store.prune({S.CANCELLED: NOW + 10}, 10) == 2
        assert await store.workflow(flow.id) is None
        again: Any = await running_workflow(store, NOW + 20)
        state = await store.workflow(again.id)
        assert state is not None and state.history == [] and state.signals == []

    async def test_lease_expiry_of_a_step_does_not_wake_before_it_ends(self, store: Store) -> None:
        """A step whose node died retries: not an end, its workflow sleeps on."""
        flow = await running_workflow(store)
        await store.finish([waiting(flow, step_continuation(flow))], NOW + 1)
        await run(store, 1, NOW + 2)
        moves = await store.recover_expired(NOW + 2 + LEASE)
        assert path(moves) == [(S.RUNNING, S.RETRYING)]
        state = await store.workflow(flow.id)
        assert state is not None and state.task.status is S.WAITING
