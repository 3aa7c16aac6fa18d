"""The decisions every store shares: each pure function, then a stateful walk of them all.

The walk drives a few tasks and two nodes through claims, start reports, outcomes,
heartbeats, releases, lease expiry and crashes, using only :mod:`trellis_actors.decisions`
(and :func:`~trellis_actors.lifecycle.transition` for what an operator or the clock does:
cancel, promote), and checks the rules of the claim protocol after every step.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trellis_actors import decisions
from trellis_actors.decisions import Change, Outcome
from trellis_actors.errors import InvalidTransition
from trellis_actors.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    Task,
    TaskError,
    TaskEvent,
    TaskStatus,
    created,
    transition,
)

S = TaskStatus
NOW = 100.0
LEASE = 30.0
BOOM = TaskError("ValueError", "boom")
HELD = (S.QUEUED, S.RUNNING)


def make_task(status: S = S.QUEUED, **fields: Any) -> Task:
    defaults: dict[str, Any] = {"created_at": 50.0, "updated_at": 50.0, "run_at": 50.0}
    if status is not S.PENDING:
        defaults["queued_at"] = 50.0
    return Task("t1", "echo", "default", {"x": 1}, status, **{**defaults, **fields})


def claimed(attempt: int = 0, owner: str = "w1", **fields: Any) -> Task:
    """A queued task leased to ``owner`` until ``NOW + LEASE``."""
    lease = {"lease_owner": owner, "lease_expires_at": NOW + LEASE}
    return make_task(S.QUEUED, attempt=attempt, **lease, **fields)


def running(attempt: int = 1, owner: str = "w1", **fields: Any) -> Task:
    """A task whose handler started, under ``owner``'s lease until ``NOW + LEASE``."""
    lease = {"lease_owner": owner, "lease_expires_at": NOW + LEASE, "started_at": NOW - 5}
    return make_task(S.RUNNING, attempt=attempt, **lease, **fields)


def moves(change: Change | None) -> list[tuple[S | None, S]]:
    assert change is not None
    return [(move.event.from_status, move.event.to_status) for move in change.moves]


def unleased(task: Task) -> dict[str, Any]:
    """A task's fields but its lease."""
    found = fields_of(task)
    found.pop("lease_owner")
    found.pop("lease_expires_at")
    return found


def fields_of(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in Task.__dataclass_fields__}


class TestHoldsAndClaimable:
    @pytest.mark.parametrize("status", list(S))
    def test_a_lease_is_held_while_claimed_or_running(self, status: S) -> None:
        """holds(): the lease owner of a queued or running task, and nobody else."""
        task = make_task(status, lease_owner="w1", lease_expires_at=NOW)
        assert decisions.holds(task, "w1") is (status in HELD)
        assert decisions.holds(task, "w2") is False
        assert decisions.holds(make_task(status), "w1") is False

    @pytest.mark.parametrize("status", list(S))
    def test_only_a_queued_task_nobody_holds_is_claimable(self, status: S) -> None:
        """claimable(): queued and without a lease owner."""
        assert decisions.claimable(make_task(status)) is (status is S.QUEUED)
        assert decisions.claimable(make_task(status, lease_owner="w1")) is False


class TestClaim:
    def test_a_claim_leases_and_nothing_else(self) -> None:
        """The task stays queued, its attempt unchanged; no move; the original untouched."""
        task = make_task(attempt=1)
        change = decisions.claim(task, "w1", NOW + LEASE)
        assert change is not None and change.moves == []
        leased = change.task
        assert (leased.status, leased.attempt, leased.started_at) == (S.QUEUED, 1, None)
        assert (leased.lease_owner, leased.lease_expires_at) == ("w1", NOW + LEASE)
        assert unleased(leased) == unleased(task)
        assert task.lease_owner is None

    def test_a_held_task_is_not_claimed(self) -> None:
        """Neither another owner nor the holder itself can claim a held task."""
        for owner in ("w1", "w2"):
            assert decisions.claim(claimed(), owner, NOW + 99) is None
            assert decisions.claim(running(), owner, NOW + 99) is None

    @pytest.mark.parametrize("status", [s for s in S if s is not S.QUEUED])
    def test_only_queued_tasks_are_claimed(self, status: S) -> None:
        """Pending, running, waiting and finished tasks are never leased."""
        assert decisions.claim(make_task(status), "w1", NOW + LEASE) is None


class TestSettle:
    def test_a_start_makes_a_claimed_task_running(self) -> None:
        """One move, queued → running at started_at, the attempt counted, the lease kept,
        last attempt's progress cleared."""
        task = claimed(attempt=1, progress=0.5, progress_message="half")
        change = decisions.settle(task, Outcome("t1", "w1", 2, S.RUNNING, started_at=NOW - 1), NOW)
        assert moves(change) == [(S.QUEUED, S.RUNNING)]
        assert change is not None
        started = change.task
        assert (started.status, started.attempt, started.started_at) == (S.RUNNING, 2, NOW - 1)
        assert (started.lease_owner, started.lease_expires_at) == ("w1", NOW + LEASE)
        assert (started.progress, started.progress_message) == (None, None)
        (move,) = change.moves
        assert (move.event.at, move.event.attempt, move.task) == (NOW - 1, 2, started)

    def test_a_start_without_a_time_starts_now(self) -> None:
        """A start report without started_at starts the task at ``now``."""
        change = decisions.settle(claimed(), Outcome("t1", "w1", 1, S.RUNNING), NOW)
        assert change is not None and change.task.started_at == NOW

    @pytest.mark.parametrize(
        ("status", "path"),
        [
            (S.COMPLETED, [(S.QUEUED, S.RUNNING), (S.RUNNING, S.COMPLETED)]),
            (S.RETRYING, [(S.QUEUED, S.RUNNING), (S.RUNNING, S.RETRYING)]),
            (S.FAILED, [(S.QUEUED, S.RUNNING), (S.RUNNING, S.FAILED), (S.FAILED, S.DEAD)]),
            (S.CANCELLED, [(S.QUEUED, S.RUNNING), (S.RUNNING, S.CANCELLED)]),
        ],
    )
    def test_an_outcome_before_its_start_starts_the_task_first(
        self, status: S, path: list[tuple[S, S]]
    ) -> None:
        """The start at the outcome's started_at, then the outcome at now."""
        outcome = Outcome("t1", "w1", 1, status, error=BOOM, started_at=NOW - 3)
        change = decisions.settle(claimed(), outcome, NOW)
        assert moves(change) == path
        assert change is not None
        assert [move.event.at for move in change.moves] == [NOW - 3] + [NOW] * (len(path) - 1)
        assert {move.event.attempt for move in change.moves} == {1}
        assert change.task is change.moves[-1].task
        assert (change.task.started_at, change.task.lease_owner) == (NOW - 3, None)

    def test_an_outcome_of_a_running_task(self) -> None:
        """Completed: result kept, finish time, lease cleared; one move."""
        outcome = Outcome("t1", "w1", 1, S.COMPLETED, result={"a": 1})
        change = decisions.settle(running(), outcome, NOW)
        assert moves(change) == [(S.RUNNING, S.COMPLETED)]
        assert change is not None
        done = change.task
        assert (done.result, done.finished_at, done.lease_owner, done.started_at) == (
            {"a": 1},
            NOW,
            None,
            NOW - 5,
        )

    def test_a_retry_is_due_when_the_worker_says(self) -> None:
        """retry_at becomes run_at; without one, the retry is due now. The error's message
        is the event's detail."""
        later = Outcome("t1", "w1", 1, S.RETRYING, error=BOOM, retry_at=NOW + 9)
        change = decisions.settle(running(), later, NOW)
        assert change is not None
        assert (change.task.run_at, change.task.error, change.moves[0].event.detail) == (
            NOW + 9,
            BOOM,
            "boom",
        )
        at_once = decisions.settle(running(), Outcome("t1", "w1", 1, S.RETRYING), NOW)
        assert at_once is not None and at_once.task.run_at == NOW

    def test_a_retry_of_the_last_attempt_fails(self) -> None:
        """A retry asked for when no attempt is left fails the task (and dead-letters)."""
        last = running(attempt=3, max_attempts=3)
        change = decisions.settle(last, Outcome("t1", "w1", 3, S.RETRYING, error=BOOM), NOW)
        assert moves(change) == [(S.RUNNING, S.FAILED), (S.FAILED, S.DEAD)]

    def test_a_failure_without_dead_lettering_stays_failed(self) -> None:
        """Failed, and no further, when the task does not dead-letter."""
        change = decisions.settle(running(dead_letter=False), Outcome("t1", "w1", 1, S.FAILED), NOW)
        assert moves(change) == [(S.RUNNING, S.FAILED)]

    @pytest.mark.parametrize(
        ("task", "owner", "attempt", "status"),
        [
            (claimed(), "w2", 1, S.RUNNING),  # not the holder
            (claimed(), "w2", 1, S.COMPLETED),
            (claimed(), "w1", 0, S.RUNNING),  # not the next attempt
            (claimed(), "w1", 2, S.RUNNING),
            (claimed(), "w1", 0, S.COMPLETED),
            (claimed(), "w1", 2, S.FAILED),
            (running(), "w2", 1, S.COMPLETED),
            (running(), "w1", 0, S.COMPLETED),  # another attempt's outcome
            (running(), "w1", 2, S.COMPLETED),
            (running(), "w1", 1, S.RUNNING),  # a second start
            (running(), "w1", 2, S.RUNNING),
            (make_task(), "w1", 1, S.RUNNING),  # never claimed
            (make_task(), "w1", 1, S.COMPLETED),
            (make_task(S.PENDING, lease_owner="w1"), "w1", 1, S.RUNNING),  # not held
            (make_task(S.RETRYING, attempt=1), "w1", 1, S.COMPLETED),
            (make_task(S.CANCELLED, attempt=1), "w1", 1, S.COMPLETED),
            (running(), "w1", 1, S.QUEUED),  # not a report a lease holder can make
            (claimed(), "w1", 1, S.PENDING),
            (running(), "w1", 1, S.DEAD),
        ],
    )
    def test_reports_that_do_not_apply_change_nothing(
        self, task: Task, owner: str, attempt: int, status: S
    ) -> None:
        """Another owner, another attempt, a second start, a task not held: None."""
        assert decisions.settle(task, Outcome("t1", owner, attempt, status), NOW) is None


class TestHeartbeat:
    @pytest.mark.parametrize("task", [claimed(), running()], ids=["claimed", "running"])
    def test_the_holder_extends_its_lease(self, task: Task) -> None:
        """Only the lease's expiry changes; no move."""
        change = decisions.heartbeat(task, "w1", NOW + 99)
        assert change is not None and change.moves == []
        assert change.task.lease_expires_at == NOW + 99
        assert unleased(change.task) == unleased(task)
        assert (change.task.status, change.task.lease_owner) == (task.status, "w1")

    def test_nobody_else_extends_a_lease(self) -> None:
        """Another owner, an unheld task or a finished one: None."""
        assert decisions.heartbeat(claimed(), "w2", NOW + 99) is None
        assert decisions.heartbeat(running(), "w2", NOW + 99) is None
        assert decisions.heartbeat(make_task(), "w1", NOW + 99) is None
        done = make_task(S.COMPLETED, lease_owner="w1", lease_expires_at=NOW)
        assert decisions.heartbeat(done, "w1", NOW + 99) is None


class TestRelease:
    def test_a_claimed_task_goes_back_as_it_was(self) -> None:
        """No move, no attempt change: just the lease gone."""
        task = claimed(attempt=1)
        change = decisions.release(task, "w1", NOW)
        assert change is not None and change.moves == []
        assert unleased(change.task) == unleased(task)
        assert (change.task.lease_owner, change.task.lease_expires_at) == (None, None)
        assert decisions.claimable(change.task)

    def test_a_running_task_retries_at_once_uncounted(self) -> None:
        """running → retrying due now, its attempt given back; the lease cleared."""
        change = decisions.release(running(attempt=2), "w1", NOW)
        assert moves(change) == [(S.RUNNING, S.RETRYING)]
        assert change is not None
        assert (change.task.attempt, change.task.run_at, change.task.lease_owner) == (1, NOW, None)
        assert change.moves[0].event.detail == "released at shutdown; the attempt is not counted"

    def test_only_the_holder_releases(self) -> None:
        """Another owner's release, or one of an unheld task: None."""
        assert decisions.release(claimed(), "w2", NOW) is None
        assert decisions.release(running(), "w2", NOW) is None
        assert decisions.release(make_task(), "w1", NOW) is None


class TestExpire:
    @pytest.mark.parametrize("task", [claimed(), running()], ids=["claimed", "running"])
    def test_a_lease_expires_at_its_time(self, task: Task) -> None:
        """expired() from lease_expires_at on, not before; expire() changes nothing before."""
        assert decisions.expired(task, NOW + LEASE - 1) is False
        assert decisions.expire(task, NOW + LEASE - 1) is None
        assert decisions.expired(task, NOW + LEASE) is True

    def test_an_expired_claim_costs_nothing(self) -> None:
        """A claimed task goes back as it was, even on its last attempt: no move."""
        task = claimed(attempt=2, max_attempts=3)
        change = decisions.expire(task, NOW + LEASE)
        assert change is not None and change.moves == []
        assert unleased(change.task) == unleased(task)
        assert decisions.claimable(change.task)

    def test_an_expired_run_retries_while_attempts_remain(self) -> None:
        """running → retrying due now, the attempt counted, a LeaseExpired error."""
        change = decisions.expire(running(attempt=2, max_attempts=3), NOW + LEASE)
        assert moves(change) == [(S.RUNNING, S.RETRYING)]
        assert change is not None
        assert (change.task.attempt, change.task.run_at, change.task.lease_owner) == (
            2,
            NOW + LEASE,
            None,
        )
        assert change.task.error == TaskError("LeaseExpired", "the lease held by w1 expired")

    @pytest.mark.parametrize(
        ("dead_letter", "path"),
        [(True, [(S.RUNNING, S.FAILED), (S.FAILED, S.DEAD)]), (False, [(S.RUNNING, S.FAILED)])],
    )
    def test_an_expired_last_run_fails(self, dead_letter: bool, path: list[tuple[S, S]]) -> None:
        """No attempts left: failed (then dead when the task dead-letters)."""
        task = running(attempt=3, max_attempts=3, dead_letter=dead_letter)
        assert moves(decisions.expire(task, NOW + LEASE)) == path

    @pytest.mark.parametrize("status", [s for s in S if s not in HELD])
    def test_only_held_tasks_expire(self, status: S) -> None:
        """Only queued and running tasks hold leases that can run out."""
        task = make_task(status, lease_owner="w1", lease_expires_at=NOW)
        assert decisions.expired(task, NOW + 99) is False
        assert decisions.expire(task, NOW + 99) is None
        assert decisions.expired(make_task(), NOW + 99) is False


# -- the stateful walk ------------------------------------------------------------------

OWNERS = ("a", "b")
#: Which task a report or a release is about: one of the held tasks (when any).
PICKS = st.integers(0, 2)
#: Who reports: mostly the task's lease holder, else either node.
REPORTERS = st.sampled_from(["holder", "holder", "holder", *OWNERS])
ENDS = [S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED]


class ClaimProtocol(RuleBasedStateMachine):
    """Three tasks (1, 2 and 3 attempts; one not dead-lettered), two nodes, one clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.tasks: dict[str, Task] = {}
        self.events: dict[str, list[TaskEvent]] = {}
        self.starter: dict[str, str] = {}  # running task -> the owner whose start was recorded
        self.down: set[str] = set()  # crashed nodes: they report and renew nothing
        for number, max_attempts in enumerate((1, 2, 3)):
            task = Task(
                f"t{number}",
                "echo",
                "default",
                None,
                S.PENDING,
                max_attempts=max_attempts,
                dead_letter=number != 1,
                created_at=NOW,
                updated_at=NOW,
                run_at=NOW,
            )
            first = created(task)
            queued = transition(task, S.QUEUED, at=NOW)
            self.tasks[task.id] = queued.task
            self.events[task.id] = [first.event, queued.event]

    # -- book-keeping ------------------------------------------------------------------
    def _keep(self, before: Task, change: Change | None, *, attempt_change: int = 0) -> None:
        """Keep what a decision returned, checking the rules every change obeys: each move
        is recorded once, in order, from the stored status; the attempt moves only by a
        recorded start (+1) or the release of a running task (``attempt_change``)."""
        if change is None:
            return
        assert change.task.id == before.id
        status = before.status
        for move in change.moves:
            assert move.event.task_id == before.id
            assert move.event.from_status is status
            assert move.event.to_status in TRANSITIONS[status]
            assert (move.task.status, move.task.attempt) == (
                move.event.to_status,
                move.event.attempt,
            )
            status = move.event.to_status
        if change.moves:
            assert change.task is change.moves[-1].task
        assert change.task.status is status
        started = sum(
            1
            for m in change.moves
            if m.event.from_status is S.QUEUED and m.event.to_status is S.RUNNING
        )
        assert change.task.attempt == before.attempt + started + attempt_change
        if before.lease_owner is not None and change.task.lease_owner is not None:
            assert change.task.lease_owner == before.lease_owner, "a lease changed hands"
        self.tasks[before.id] = change.task
        self.events[before.id] += [move.event for move in change.moves]
        if change.task.status is S.RUNNING and before.status is not S.RUNNING:
            assert change.task.lease_owner is not None
            self.starter[before.id] = change.task.lease_owner
        elif change.task.status is not S.RUNNING:
            self.starter.pop(before.id, None)

    def _pick(self, index: int) -> Task:
        """The task ``index`` among those held (claimed or running), or among all."""
        held = [task for task in self.tasks.values() if task.lease_owner is not None]
        pool = held or list(self.tasks.values())
        return pool[index % len(pool)]

    def _reporter(self, task: Task, who: str) -> str:
        return (task.lease_owner or OWNERS[0]) if who == "holder" else who

    # -- rules -------------------------------------------------------------------------
    def _any(self, *statuses: S, held: bool | None = None) -> bool:
        """Whether some task is in one of ``statuses`` (and held, or not, when asked): the
        rules that would find nothing to do wait for it, so the walk's steps count."""
        return any(
            task.status in statuses and (held is None or (task.lease_owner is not None) is held)
            for task in self.tasks.values()
        )

    @precondition(lambda self: self._any(S.QUEUED, held=False))
    @rule(owner=st.sampled_from(OWNERS))
    def claim(self, owner: str) -> None:
        """A node asks every task in turn and takes the first it is granted: only a queued
        task nobody holds is granted."""
        if owner in self.down:
            return
        for before in list(self.tasks.values()):
            change = decisions.claim(before, owner, self.now + LEASE)
            if before.status is not S.QUEUED or before.lease_owner is not None:
                assert change is None, "a held or unqueued task was claimed"
                continue
            assert change is not None and change.moves == []
            lease = (change.task.lease_owner, change.task.lease_expires_at)
            assert lease == (owner, self.now + LEASE)
            assert unleased(change.task) == unleased(before)
            self._keep(before, change)
            return

    @precondition(lambda self: self._any(S.QUEUED, held=True))
    @rule(
        pick=PICKS,
        who=REPORTERS,
        offset=st.sampled_from([1, 1, 1, 0, 2]),  # mostly the right attempt
        at_once=st.booleans(),
    )
    def report_start(self, pick: int, who: str, offset: int, at_once: bool) -> None:
        """A worker reports its handler started, as attempt ``stored + offset``."""
        before = self._pick(pick)
        task_id = before.id
        owner = self._reporter(before, who)
        if owner in self.down:
            return
        started_at = None if at_once else self.now - 0.5
        report = Outcome(task_id, owner, before.attempt + offset, S.RUNNING, started_at=started_at)
        change = decisions.settle(before, report, self.now)
        applies = before.status is S.QUEUED and before.lease_owner == owner and offset == 1
        if not applies:
            assert change is None, "a start that does not apply was recorded"
            return
        assert moves(change) == [(S.QUEUED, S.RUNNING)]
        assert change is not None
        assert change.task.started_at == (self.now if at_once else self.now - 0.5)
        self._keep(before, change)

    @precondition(lambda self: self._any(*HELD, held=True))
    @rule(
        pick=PICKS,
        who=REPORTERS,
        status=st.sampled_from(ENDS),
        offset=st.sampled_from([0, 0, 0, -1, 1]),  # mostly the attempt that ran
    )
    def report_outcome(self, pick: int, who: str, status: S, offset: int) -> None:
        """A worker reports how its attempt ended; started or not (then the attempt it ran
        is the next one). Like the worker, it retries only while attempts remain."""
        before = self._pick(pick)
        task_id = before.id
        owner = self._reporter(before, who)
        if owner in self.down:
            return
        ran = before.attempt + (1 if before.status is S.QUEUED else 0) + offset
        if status is S.RETRYING and ran >= before.max_attempts:
            status = S.FAILED
        outcome = Outcome(task_id, owner, ran, status, error=BOOM, retry_at=self.now + 5)
        change = decisions.settle(before, outcome, self.now)
        applies = before.status in HELD and before.lease_owner == owner and offset == 0
        if not applies:
            assert change is None, "an outcome that does not apply was recorded"
            return
        expected = [(S.QUEUED, S.RUNNING)] if before.status is S.QUEUED else []
        expected.append((S.RUNNING, status))
        if status is S.FAILED and before.dead_letter:
            expected.append((S.FAILED, S.DEAD))
        assert moves(change) == expected
        self._keep(before, change)

    @precondition(lambda self: self._any(*HELD, held=True))
    @rule(owner=st.sampled_from(OWNERS))
    def heartbeat(self, owner: str) -> None:
        """A live node renews every lease it holds, claimed or running."""
        if owner in self.down:
            return
        for before in list(self.tasks.values()):
            change = decisions.heartbeat(before, owner, self.now + LEASE)
            if before.status in HELD and before.lease_owner == owner:
                assert change is not None and change.moves == []
                assert change.task.lease_expires_at == self.now + LEASE
                assert unleased(change.task) == unleased(before)
                self._keep(before, change)
            else:
                assert change is None

    @precondition(lambda self: self._any(*HELD, held=True))
    @rule(pick=PICKS, who=REPORTERS)
    def release(self, pick: int, who: str) -> None:
        """A stopping node gives a task back: a claimed one as it was, a running one to
        retry without counting the attempt."""
        before = self._pick(pick)
        owner = self._reporter(before, who)
        if owner in self.down:
            return
        change = decisions.release(before, owner, self.now)
        if before.status not in HELD or before.lease_owner != owner:
            assert change is None
            return
        assert change is not None
        if before.status is S.QUEUED:
            assert change.moves == [] and unleased(change.task) == unleased(before)
            self._keep(before, change)
        else:
            assert moves(change) == [(S.RUNNING, S.RETRYING)]
            self._keep(before, change, attempt_change=-1)

    @rule(seconds=st.sampled_from([1.0, 5.0, LEASE / 2, LEASE]))
    def tick(self, seconds: float) -> None:
        """Time passes; the janitor recovers every lease that ran out."""
        self.now += seconds
        for before in list(self.tasks.values()):
            change = decisions.expire(before, self.now)
            overdue = (
                before.status in HELD
                and before.lease_expires_at is not None
                and before.lease_expires_at <= self.now
            )
            assert decisions.expired(before, self.now) is overdue
            if not overdue:
                assert change is None
                continue
            assert change is not None
            if before.status is S.QUEUED:
                assert change.moves == [] and unleased(change.task) == unleased(before)
            elif before.attempt < before.max_attempts:
                assert moves(change) == [(S.RUNNING, S.RETRYING)]
            else:
                assert moves(change)[0] == (S.RUNNING, S.FAILED)
            self._keep(before, change)

    @precondition(lambda self: self._any(S.RETRYING))
    @rule()
    def promote(self) -> None:
        """Retries whose time has come are queued again (the stores' promote_due)."""
        for before in list(self.tasks.values()):
            if before.status is S.RETRYING and before.run_at <= self.now:
                move = transition(before, S.QUEUED, at=self.now)
                self._keep(before, Change(move.task, [move]))

    @rule(task_id=st.sampled_from(["t0", "t1", "t2"]), now=st.sampled_from([False] * 7 + [True]))
    def cancel(self, task_id: str, now: bool) -> None:
        """An operator cancels a task, wherever it is (refused once it finished); seldom
        (``now``), or few tasks would live long enough to run."""
        if not now:
            return
        before = self.tasks[task_id]
        if S.CANCELLED not in TRANSITIONS[before.status]:
            with pytest.raises(InvalidTransition):
                transition(before, S.CANCELLED, at=self.now)
            return
        move = transition(before, S.CANCELLED, at=self.now, detail="cancelled by request")
        self._keep(before, Change(move.task, [move]))

    @precondition(lambda self: not self.down)
    @rule(owner=st.sampled_from(OWNERS))
    def crash(self, owner: str) -> None:
        """A node dies: it reports and renews nothing more, so its leases run out."""
        self.down.add(owner)

    @precondition(lambda self: bool(self.down))
    @rule()
    def restart(self) -> None:
        """The crashed node comes back under its name, holding nothing it knows of."""
        self.down.clear()

    # -- invariants --------------------------------------------------------------------
    @invariant()
    def every_status_came_by_recorded_allowed_moves(self) -> None:
        for task_id, task in self.tasks.items():
            history = self.events[task_id]
            assert history[0].from_status is None
            for event in history:
                assert event.to_status in TRANSITIONS[event.from_status]
            for earlier, later in itertools.pairwise(history):
                assert later.from_status is earlier.to_status
            assert history[-1].to_status is task.status
            assert history[-1].attempt == task.attempt

    @invariant()
    def running_only_when_its_holder_started_it(self) -> None:
        for task_id, task in self.tasks.items():
            if task.status is S.RUNNING:
                assert task.lease_owner is not None
                assert self.starter.get(task_id) == task.lease_owner
                assert task.started_at is not None

    @invariant()
    def attempts_count_starts(self) -> None:
        """The attempt is the number of starts recorded, less the runs released (and reset
        by nothing else in this walk)."""
        for task_id, task in self.tasks.items():
            history = self.events[task_id]
            starts = sum(1 for e in history if e.to_status is S.RUNNING)
            released = sum(1 for e in history if e.detail and e.detail.startswith("released"))
            assert task.attempt == starts - released
            assert 0 <= task.attempt <= task.max_attempts

    @invariant()
    def leases_only_on_held_tasks(self) -> None:
        for task in self.tasks.values():
            assert (task.lease_owner is None) is (task.lease_expires_at is None)
            if task.status not in HELD:
                assert task.lease_owner is None
            if task.status in TERMINAL:
                assert (task.lease_owner, task.lease_expires_at) == (None, None)
                assert task.finished_at is not None
            if task.status is S.RUNNING:
                assert task.lease_owner is not None

    @invariant()
    def claimable_means_queued_and_free(self) -> None:
        for task in self.tasks.values():
            free = task.status is S.QUEUED and task.lease_owner is None
            assert decisions.claimable(task) is free
            for owner in OWNERS:
                holds = task.status in HELD and task.lease_owner == owner
                assert decisions.holds(task, owner) is holds


ClaimProtocol.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestClaimProtocol = ClaimProtocol.TestCase


class TestAllowance:
    """decisions.allowance: what each limited type may claim now, and when to look again."""

    LIMITS = {
        "api": decisions.TypeLimit(concurrency=2),
        "mail": decisions.TypeLimit(rate=3, per=1.0),
    }

    def test_nothing_held(self) -> None:
        """With nothing held, each type may take its limit."""
        counts, retry_at = decisions.allowance(self.LIMITS, {}, 10.0)
        assert (counts, retry_at) == ({"api": 2, "mail": 3}, None)

    def test_concurrency_counts_held_tasks(self) -> None:
        """Held (claimed or running) tasks use up concurrency; no timer: an end frees one."""
        loads = {"api": decisions.TypeLoad(held=2, unstarted=1)}
        assert decisions.allowance(self.LIMITS, loads, 10.0) == ({"api": 0, "mail": 3}, None)

    def test_rate_counts_recent_starts_and_unstarted_claims(self) -> None:
        """Starts of the window and claims not yet started count; the window's oldest
        start leaving it frees the next slot."""
        loads = {"mail": decisions.TypeLoad(held=1, unstarted=1, recent=2, oldest=(9.2, 9.5))}
        counts, retry_at = decisions.allowance(self.LIMITS, loads, 10.0)
        assert counts["mail"] == 0
        assert retry_at == pytest.approx(10.2)

    def test_rate_held_by_claims_alone_looks_again_a_window_later(self) -> None:
        """Claims not yet started fill the rate: look again one window from now."""
        loads = {"mail": decisions.TypeLoad(held=3, unstarted=3)}
        assert decisions.allowance(self.LIMITS, loads, 10.0).retry_at == 11.0

    def test_held_until_counts_what_the_claim_took(self) -> None:
        """After a claim took the last slots, held_until says when one frees."""
        loads = {"mail": decisions.TypeLoad(recent=1, oldest=(9.5,))}
        assert decisions.held_until(self.LIMITS, loads, {}, 10.0) is None
        assert decisions.held_until(self.LIMITS, loads, {"mail": 2}, 10.0) == 10.5

    @pytest.mark.parametrize(
        ("text", "expected"), [("5/s", (5, 1.0)), ("100/m", (100, 60.0)), ("2/h", (2, 3600.0))]
    )
    def test_parse_rate(self, text: str, expected: tuple[int, float]) -> None:
        assert decisions.parse_rate(text) == expected

    def test_pausing_twice_keeps_the_first_time(self) -> None:
        """A queue paused again keeps its paused_at; resumed, it has none."""
        paused = decisions.paused_change(None, "q", True, 5.0)
        assert decisions.paused_change(paused, "q", True, 9.0) is paused
        assert decisions.paused_change(paused, "q", False, 9.0).paused_at is None
