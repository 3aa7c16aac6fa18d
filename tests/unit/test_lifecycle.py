"""The task lifecycle: the transition table, ``transition()`` and a stateful walk of it."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trellis_actors import InvalidTransition, Task, TaskError, TaskStatus
from trellis_actors.lifecycle import (
    ACTIVE,
    BACKLOG,
    CANCELLABLE,
    DELAYED,
    TERMINAL,
    TRANSITIONS,
    check,
    created,
    transition,
)

S = TaskStatus
SOURCES: list[TaskStatus | None] = [None, *TaskStatus]

#: The design's table (DESIGN.md §2), written out independently of ``TRANSITIONS``.
ALLOWED: set[tuple[TaskStatus | None, TaskStatus]] = {
    (None, S.PENDING),
    (S.PENDING, S.QUEUED),
    (S.QUEUED, S.RUNNING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.RETRYING),
    (S.RETRYING, S.QUEUED),
    (S.RUNNING, S.FAILED),
    (S.FAILED, S.DEAD),
    (S.DEAD, S.QUEUED),
    (S.PENDING, S.CANCELLED),
    (S.QUEUED, S.CANCELLED),
    (S.RETRYING, S.CANCELLED),
    (S.RUNNING, S.CANCELLED),
    # A workflow between continuations (see docs/lifecycle.md#workflows).
    (S.RUNNING, S.WAITING),
    (S.WAITING, S.QUEUED),
    (S.WAITING, S.CANCELLED),
}
PAIRS = list(itertools.product(SOURCES, TaskStatus))
REFUSED = [pair for pair in PAIRS if pair not in ALLOWED]


def _id(pair: tuple[TaskStatus | None, TaskStatus]) -> str:
    source, to = pair
    return f"{'new' if source is None else source.value}->{to.value}"


def make_task(status: TaskStatus = S.PENDING, **fields: Any) -> Task:
    defaults: dict[str, Any] = {"created_at": 100.0, "updated_at": 100.0, "run_at": 100.0}
    return Task(
        id="t1",
        type="echo",
        queue="default",
        payload={"x": 1},
        status=status,
        **{**defaults, **fields},
    )


def refusal(source: TaskStatus | None, to: TaskStatus) -> str:
    """The exact message ``check`` gives for a refused move."""
    name = "(new)" if source is None else source.value
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[source])) or "nothing"
    return re.escape(
        f"task t1 cannot move from {name} to {to.value}; from {name} it may move to: {allowed}"
    )


class TestTable:
    def test_table_is_the_designed_one(self) -> None:
        """TRANSITIONS allows exactly the moves of the design's table."""
        table = {(source, to) for source, targets in TRANSITIONS.items() for to in targets}
        assert table == ALLOWED
        assert set(TRANSITIONS) == set(SOURCES)

    def test_every_pair_is_covered(self) -> None:
        """Allowed plus refused pairs are every (source, target) pair, None included."""
        assert len(PAIRS) == 10 * 9
        assert len(ALLOWED) + len(REFUSED) == len(PAIRS)

    def test_terminal_statuses(self) -> None:
        """completed, failed, dead and cancelled are terminal; nothing else is."""
        assert {s for s in TaskStatus if s.terminal} == TERMINAL
        assert {S.COMPLETED, S.FAILED, S.DEAD, S.CANCELLED} == TERMINAL

    @pytest.mark.parametrize("pair", sorted(ALLOWED, key=_id), ids=_id)
    def test_check_allows(self, pair: tuple[TaskStatus | None, TaskStatus]) -> None:
        """check() lets every allowed move through."""
        check("t1", *pair)

    @pytest.mark.parametrize("pair", REFUSED, ids=_id)
    def test_check_refuses(self, pair: tuple[TaskStatus | None, TaskStatus]) -> None:
        """check() refuses every other move, naming the rule and what is allowed instead."""
        with pytest.raises(InvalidTransition, match=f"^{refusal(*pair)}$"):
            check("t1", *pair)

    @pytest.mark.parametrize(
        "pair", sorted((p for p in ALLOWED if p[0] is not None), key=_id), ids=_id
    )
    def test_transition_allows(self, pair: tuple[TaskStatus, TaskStatus]) -> None:
        """transition() makes every allowed move and records it as an event."""
        source, to = pair
        moved, event = transition(make_task(source), to, at=200.0, detail="why")
        assert moved.status is to
        assert (event.task_id, event.from_status, event.to_status) == ("t1", source, to)
        assert (event.at, event.detail) == (200.0, "why")

    @pytest.mark.parametrize("pair", [p for p in REFUSED if p[0] is not None], ids=_id)
    def test_transition_refuses(self, pair: tuple[TaskStatus, TaskStatus]) -> None:
        """transition() refuses every other move and leaves the task as it was."""
        source, to = pair
        task = make_task(source)
        with pytest.raises(InvalidTransition, match=f"^{refusal(source, to)}$"):
            transition(task, to, at=200.0)
        assert task.status is source

    def test_created_event(self) -> None:
        """created() records the first move, from nothing to pending, at creation time."""
        task = make_task()
        same, event = created(task, detail="submitted")
        assert same is task
        assert (event.from_status, event.to_status) == (None, S.PENDING)
        assert (event.at, event.attempt, event.detail) == (100.0, 0, "submitted")

    def test_created_refuses_a_task_already_moving(self) -> None:
        """A task comes into being only as pending; the (new) source is named in the error."""
        with pytest.raises(InvalidTransition, match=refusal(None, S.QUEUED)):
            check("t1", None, S.QUEUED)


class TestStatusSets:
    def test_cancellable_is_what_the_table_lets_cancel(self) -> None:
        """CANCELLABLE holds exactly the statuses with a move to cancelled."""
        assert {s for s, _ in ALLOWED if s is not None and (s, S.CANCELLED) in ALLOWED} == (
            CANCELLABLE
        )
        assert {S.PENDING, S.QUEUED, S.RETRYING, S.RUNNING, S.WAITING} == CANCELLABLE

    def test_active_and_terminal_split_the_statuses(self) -> None:
        """Every status is either still on its way or ended, never both."""
        assert set(TaskStatus) == ACTIVE | TERMINAL
        assert not ACTIVE & TERMINAL
        assert ACTIVE == CANCELLABLE

    def test_terminal_statuses_move_only_by_policy_or_hand(self) -> None:
        """From an ended status the only moves are to the dead letters or a requeue."""
        for status in TERMINAL:
            assert {(status, to) for to in TRANSITIONS[status]} <= {
                (S.FAILED, S.DEAD),
                (S.DEAD, S.QUEUED),
            }

    def test_waiting_and_delayed(self) -> None:
        """BACKLOG: active and heading for a worker; DELAYED: active and heading for queued."""
        assert {S.PENDING, S.QUEUED, S.RETRYING, S.WAITING} == BACKLOG
        assert {S.PENDING, S.RETRYING, S.WAITING} == DELAYED
        for status in BACKLOG:
            assert TRANSITIONS[status] & {S.QUEUED, S.RUNNING}
        for status in ACTIVE - BACKLOG:
            assert not TRANSITIONS[status] & {S.QUEUED, S.RUNNING}
        assert {s for s in ACTIVE if (s, S.QUEUED) in ALLOWED} == DELAYED


class TestTimestamps:
    def test_queued_sets_queued_at(self) -> None:
        """Moving to queued stamps queued_at and updated_at, nothing else."""
        moved = transition(make_task(S.PENDING), S.QUEUED, at=150.0).task
        assert (moved.queued_at, moved.updated_at) == (150.0, 150.0)
        assert moved.started_at is None and moved.finished_at is None

    def test_running_sets_started_at(self) -> None:
        """Moving to running stamps started_at and applies the lease it is given."""
        lease = {"lease_owner": "n1", "lease_expires_at": 190.0}
        moved = transition(make_task(S.QUEUED), S.RUNNING, at=160.0, attempt=1, **lease).task
        assert moved.started_at == 160.0
        assert (moved.lease_owner, moved.lease_expires_at, moved.attempt) == ("n1", 190.0, 1)
        assert moved.finished_at is None

    @pytest.mark.parametrize("to", [S.COMPLETED, S.FAILED, S.CANCELLED])
    def test_leaving_running_for_an_end_sets_finished_at_and_clears_lease(
        self, to: TaskStatus
    ) -> None:
        """Ending a running task stamps finished_at and clears the lease."""
        running = make_task(S.RUNNING, lease_owner="n1", lease_expires_at=190.0, attempt=1)
        moved, event = transition(running, to, at=170.0)
        assert moved.finished_at == 170.0
        assert (moved.lease_owner, moved.lease_expires_at) == (None, None)
        assert event.attempt == 1

    def test_retrying_clears_lease_without_finishing(self) -> None:
        """running → retrying clears the lease but the task is not finished."""
        running = make_task(S.RUNNING, lease_owner="n1", lease_expires_at=190.0, attempt=1)
        error = TaskError("ValueError", "bad")
        moved = transition(running, S.RETRYING, at=170.0, error=error, run_at=180.0).task
        assert moved.finished_at is None
        assert (moved.lease_owner, moved.lease_expires_at) == (None, None)
        assert (moved.error, moved.run_at) == (error, 180.0)

    def test_dead_sets_finished_at(self) -> None:
        """failed → dead stamps the time it went to the dead-letter set."""
        failed = make_task(S.FAILED, finished_at=170.0)
        assert transition(failed, S.DEAD, at=171.0).task.finished_at == 171.0

    def test_explicit_changes_win(self) -> None:
        """A timestamp passed explicitly is kept (a requeue clears finished_at)."""
        dead = make_task(S.DEAD, finished_at=170.0, attempt=3)
        moved = transition(dead, S.QUEUED, at=200.0, finished_at=None, attempt=0).task
        assert (moved.finished_at, moved.queued_at, moved.attempt) == (None, 200.0, 0)

    def test_lease_is_kept_only_into_running(self) -> None:
        """A claimed task keeps its lease as it starts; any other move clears it."""
        claimed = make_task(S.QUEUED, lease_owner="n1", lease_expires_at=1.0)
        started = transition(claimed, S.RUNNING, at=200.0).task
        assert (started.lease_owner, started.lease_expires_at) == ("n1", 1.0)
        cancelled = transition(claimed, S.CANCELLED, at=200.0).task
        assert (cancelled.lease_owner, cancelled.lease_expires_at) == (None, None)

    def test_original_is_untouched(self) -> None:
        """transition() returns a copy; the task it was given does not change."""
        task = make_task(S.PENDING)
        moved = transition(task, S.QUEUED, at=150.0).task
        assert moved is not task
        assert (task.status, task.queued_at, task.updated_at) == (S.PENDING, None, 100.0)

    def test_unknown_change_is_refused(self) -> None:
        """A change naming no Task field is an error, not a silent new attribute."""
        with pytest.raises(TypeError, match="no field"):
            transition(make_task(S.PENDING), S.QUEUED, at=150.0, colour="red")


class LifecycleWalk(RuleBasedStateMachine):
    """Walks one task through random moves, as the stores make them, via transition()."""

    def __init__(self) -> None:
        super().__init__()
        self.task, event = created(make_task())
        self.events = [event]
        self.now = 100.0
        self.sealed: TaskStatus | None = None  # completed or cancelled: never moves again

    def _move(self, to: TaskStatus, **changes: Any) -> None:
        self.now += 1.0
        before = self.task
        if to not in TRANSITIONS[before.status]:
            with pytest.raises(InvalidTransition, match="cannot move from"):
                transition(before, to, at=self.now, **changes)
            assert self.task is before
            return
        assert self.sealed is None, f"{self.sealed} moved to {to}"
        self.task, event = transition(before, to, at=self.now, **changes)
        self.events.append(event)
        if to in (S.COMPLETED, S.CANCELLED):
            self.sealed = to

    @rule(to=st.sampled_from([s for s in TaskStatus if s is not S.RUNNING]))
    def move(self, to: TaskStatus) -> None:
        """Any move but a claim, with no other change (refused unless the table allows)."""
        self._move(to)

    @rule()
    def claim(self) -> None:
        """A worker takes the task: one more attempt, under a lease."""
        lease = {"lease_owner": "n1", "lease_expires_at": self.now + 30}
        self._move(S.RUNNING, attempt=self.task.attempt + 1, **lease)

    @precondition(lambda self: self.task.status is S.RUNNING)
    @rule()
    def release(self) -> None:
        """Shutdown gives a running task back without counting the attempt."""
        self._move(S.RETRYING, attempt=self.task.attempt - 1, run_at=self.now)

    @rule()
    def requeue(self) -> None:
        """An operator requeues the task with its attempts starting again."""
        self._move(S.QUEUED, attempt=0, finished_at=None)

    @invariant()
    def events_chain(self) -> None:
        assert self.events[0].from_status is None
        for before, after in itertools.pairwise(self.events):
            assert after.from_status is before.to_status
            assert after.at >= before.at
        assert self.events[-1].to_status is self.task.status

    @invariant()
    def attempt_never_negative(self) -> None:
        assert self.task.attempt >= 0
        assert all(event.attempt >= 0 for event in self.events)

    @invariant()
    def sealed_tasks_stay(self) -> None:
        if self.sealed is not None:
            assert self.task.status is self.sealed
            assert TRANSITIONS[self.sealed] == frozenset()

    @invariant()
    def only_failed_and_dead_leave_a_terminal_status(self) -> None:
        for event in self.events:
            if event.from_status in TERMINAL:
                assert (event.from_status, event.to_status) in {
                    (S.FAILED, S.DEAD),
                    (S.DEAD, S.QUEUED),
                }

    @invariant()
    def lease_only_while_running(self) -> None:
        if self.task.status is not S.RUNNING:
            assert (self.task.lease_owner, self.task.lease_expires_at) == (None, None)

    @invariant()
    def finished_tasks_have_finished_at(self) -> None:
        if self.task.status in TERMINAL:
            assert self.task.finished_at is not None


LifecycleWalk.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestLifecycleWalk = LifecycleWalk.TestCase


class TestFromDict:
    """``Task.from_dict`` and ``TaskEvent.from_dict`` undo ``to_dict`` (the API's JSON)."""

    def test_task_round_trip(self) -> None:
        """Every field the JSON carries comes back, times as epoch seconds."""
        task = Task(
            id="t1", type="echo", queue="q", payload={"a": [1]}, status=TaskStatus.RUNNING,
            priority=5, attempt=2, max_attempts=4, run_at=1_700_000_000.25, timeout=3.5,
            idempotency_key="k", created_at=1_700_000_000.5, queued_at=1_700_000_001.0,
            started_at=1_700_000_002.0, updated_at=1_700_000_003.0, result=[1, 2],
            error=TaskError("E", "boom", "tb"), progress=0.5, progress_message="half",
            lease_owner="node", lease_expires_at=1_700_000_010.0, schedule_id="s1",
        )  # fmt: skip
        again = Task.from_dict(task.to_dict())
        assert again.to_dict() == task.to_dict()
        assert (again.run_at, again.finished_at) == (1_700_000_000.25, None)

    def test_event_round_trip(self) -> None:
        """An event's from/to statuses and time come back."""
        from trellis_actors import TaskEvent

        for event in (
            TaskEvent("t1", None, TaskStatus.PENDING, 1_700_000_000.0, 0),
            TaskEvent("t1", TaskStatus.QUEUED, TaskStatus.RUNNING, 1_700_000_001.5, 1, "why"),
        ):
            assert TaskEvent.from_dict(event.to_dict()) == event
