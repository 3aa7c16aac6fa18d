"""What each store operation does to a task: pure functions, shared by every store.

The memory, SQLite and PostgreSQL stores only find tasks and persist what these functions
return, so a change of policy is a change here and nowhere else. Each function takes the
task as stored and returns a :class:`Change` — the task as it must now be stored and the
status moves (made by :func:`~trellis_actors.lifecycle.transition`) to record — or
``None`` when nothing changes (a stale outcome, a lease held by someone else, ...).

A claimed task stays ``queued`` under a lease until its handler starts: only then does it
become ``running`` and its attempt count. So a node holds a claimed task for the moments
before a worker starts it, and a crash before that costs the task no attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from .lifecycle import (
    CANCELLABLE,
    TERMINAL,
    Task,
    TaskError,
    TaskStatus,
    Transition,
    evolve,
    requeued,
    transition,
)


@dataclass(slots=True)
class Outcome:
    """A report of the worker that holds a task's lease: its handler started (``status``
    ``running``), or how the attempt ended (completed, retrying, failed or cancelled).

    ``attempt`` is the attempt the handler ran as: one more than the stored count until
    the start is recorded. Made once per task, so a plain slots class; treat it as a value.
    """

    task_id: str
    owner: str
    attempt: int
    status: TaskStatus
    result: Any = None
    error: TaskError | None = None
    retry_at: float | None = None  # when status is retrying
    seconds: float | None = None  # how long the handler ran (the queue's speed estimate)
    started_at: float | None = None  # when the handler started (store clock)
    worker: str | None = None  # the worker that ran it, on the lease owner's node
    #: A workflow's continuation: what it recorded and started, written with the outcome
    #: (when status is ``waiting``, with the wake-up check: see :func:`suspend`).
    workflow: Any = None  # workflows.Continuation (typed there: no import cycle)


#: What a lease holder may report: a start, or how the attempt ended.
_REPORTED = frozenset(
    {
        TaskStatus.RUNNING,
        TaskStatus.COMPLETED,
        TaskStatus.RETRYING,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.WAITING,
    }
)

#: The ``run_at`` of a workflow waiting with no timer (only a step or a signal wakes
#: it): 9999-12-31T23:59:59Z, later than any due time, and still a date.
NEVER = 253402300799.0


class Change(NamedTuple):
    """The task as it must now be stored, and the moves (events) that led there."""

    task: Task
    moves: list[Transition]


def holds(task: Task, owner: str) -> bool:
    """True when ``owner`` holds ``task``'s lease: claimed (``queued``) or ``running``."""
    return task.lease_owner == owner and (
        task.status is TaskStatus.RUNNING or task.status is TaskStatus.QUEUED
    )


def claimable(task: Task) -> bool:
    """A queued task nobody holds."""
    return task.status is TaskStatus.QUEUED and task.lease_owner is None


def claim(task: Task, owner: str, lease_until: float) -> Change | None:
    """Lease a queued task to ``owner``; it stays ``queued`` until its handler starts."""
    if not claimable(task):
        return None
    leased = evolve(task, {"lease_owner": owner, "lease_expires_at": lease_until})
    return Change(leased, [])


def settle(task: Task, outcome: Outcome, now: float) -> Change | None:
    """Record a report of the worker that holds ``task``: a start (``running``) or how the
    attempt ended. An outcome that arrives before its start was recorded starts the task
    first (at ``outcome.started_at``). Reports of anyone else, or of another attempt, change
    nothing."""
    if outcome.status not in _REPORTED or not holds(task, outcome.owner):
        return None
    moves: list[Transition] = []
    if task.status is TaskStatus.QUEUED:
        if outcome.attempt != task.attempt + 1:
            return None
        started = now if outcome.started_at is None else outcome.started_at
        move = transition(
            task,
            TaskStatus.RUNNING,
            at=started,
            attempt=outcome.attempt,
            progress=None,
            progress_message=None,
            node=outcome.owner,
            worker=outcome.worker,
        )
        moves.append(move)
        task = move.task
    elif outcome.attempt != task.attempt or outcome.status is TaskStatus.RUNNING:
        return None  # another attempt's report, or a start already recorded
    if outcome.status is TaskStatus.RUNNING:
        return Change(task, moves)
    if outcome.status is TaskStatus.WAITING:
        wake_at = NEVER if outcome.retry_at is None else outcome.retry_at
        moves.append(suspend(task, wake_at, now))
        return Change(moves[-1].task, moves)
    detail = None if outcome.error is None else outcome.error.message
    changes: dict[str, object] = {"result": outcome.result, "error": outcome.error}
    status = outcome.status
    if status is TaskStatus.RETRYING:
        if task.attempt >= task.max_attempts:
            status = TaskStatus.FAILED  # no attempt is left to retry
        else:
            changes["run_at"] = now if outcome.retry_at is None else outcome.retry_at
    moves.append(transition(task, status, at=now, detail=detail, **changes))
    return _dead_letter(moves, now)


def suspend(task: Task, wake_at: float, now: float) -> Transition:
    """A workflow's continuation ended waiting (for steps, a timer or a signal): it holds
    no worker until woken, at ``wake_at`` at the latest (:data:`NEVER`: no timer). A
    continuation is not an attempt: the count goes back to what it was before."""
    return transition(
        task,
        TaskStatus.WAITING,
        at=now,
        detail="waiting" if wake_at >= NEVER else "waiting for a timer",
        attempt=task.attempt - 1,
        run_at=wake_at,
        result=None,
        error=None,
    )


def wake(task: Task, now: float, why: str) -> Change | None:
    """A waiting workflow goes back to the queue (a step ended, a signal came, its timer
    fell due); any other task is left alone."""
    if task.status is not TaskStatus.WAITING:
        return None
    move = transition(task, TaskStatus.QUEUED, at=now, detail=why, run_at=now)
    return Change(move.task, [move])


#: The detail of a step's cancel that its workflow's cancel made.
WITH_WORKFLOW = "cancelled with its workflow"


def step_ended(move: Transition) -> bool:
    """True when ``move`` ends a workflow's step: its workflow learns the outcome."""
    task, event = move
    return (
        task.parent_id is not None
        and event.to_status in TERMINAL
        and (event.from_status is None or event.from_status not in TERMINAL)
    )


def heartbeat(task: Task, owner: str, lease_until: float) -> Change | None:
    """Extend ``owner``'s lease."""
    if not holds(task, owner):
        return None
    return Change(evolve(task, {"lease_expires_at": lease_until}), [])


def release(task: Task, owner: str, now: float) -> Change | None:
    """Give a held task back (a stopping node). One not started goes back to the queue as
    it was; a running one retries at once, its attempt not counted."""
    if not holds(task, owner):
        return None
    if task.status is TaskStatus.QUEUED:
        return Change(_unleased(task), [])
    move = transition(
        task,
        TaskStatus.RETRYING,
        at=now,
        detail="released at shutdown; the attempt is not counted",
        attempt=task.attempt - 1,
        run_at=now,
    )
    return Change(move.task, [move])


def expired(task: Task, now: float) -> bool:
    """True when ``task`` is held under a lease that ran out."""
    return (
        task.lease_owner is not None
        and task.lease_expires_at is not None
        and task.lease_expires_at <= now
        and (task.status is TaskStatus.RUNNING or task.status is TaskStatus.QUEUED)
    )


def expire(task: Task, now: float) -> Change | None:
    """A lease ran out (its node died or lost the store). A task that never started goes
    back to the queue, its attempt count unchanged; a running one retries while attempts
    remain, else fails (and is dead-lettered)."""
    if not expired(task, now):
        return None
    if task.status is TaskStatus.QUEUED:
        return Change(_unleased(task), [])
    error = TaskError("LeaseExpired", f"the lease held by {task.lease_owner} expired")
    if task.attempt < task.max_attempts:
        move = transition(
            task, TaskStatus.RETRYING, at=now, detail=error.message, error=error, run_at=now
        )
        return Change(move.task, [move])
    failed = transition(task, TaskStatus.FAILED, at=now, detail=error.message, error=error)
    return _dead_letter([failed], now)


def _dead_letter(moves: list[Transition], now: float) -> Change:
    last = moves[-1].task
    if last.status is TaskStatus.FAILED and last.dead_letter:
        moves.append(transition(last, TaskStatus.DEAD, at=now))
    return Change(moves[-1].task, moves)


def _unleased(task: Task) -> Task:
    return evolve(task, {"lease_owner": None, "lease_expires_at": None})


# -- operators' moves, one task or many ----------------------------------------------------


def cancel(task: Task, now: float, detail: str = "cancelled by request") -> Change | None:
    """An operator's cancel: a task still on its way ends ``cancelled`` (a running one's
    handler is stopped by whoever holds it); one that has ended is left alone. (A
    workflow's steps are cancelled with it, ``detail`` saying so.)"""
    if task.status not in CANCELLABLE:
        return None
    move = transition(task, TaskStatus.CANCELLED, at=now, detail=detail)
    return Change(move.task, [move])


def revive(task: Task, now: float) -> Change | None:
    """An operator's requeue: a ``dead`` task goes back to ``queued`` with fresh attempts;
    any other is left alone."""
    if task.status is not TaskStatus.DEAD:
        return None
    move = requeued(task, at=now)
    return Change(move.task, [move])


class Bulk(StrEnum):
    """What a bulk operation does to each task its filter selects."""

    CANCEL = "cancel"
    REQUEUE = "requeue"
    PURGE = "purge"  # delete, with the task's history


#: The statuses each bulk operation touches: a cancel stops tasks on their way, a requeue
#: revives dead ones, a purge deletes ended ones (never one a worker may hold).
BULK_STATUSES: Mapping[Bulk, frozenset[TaskStatus]] = {
    Bulk.CANCEL: CANCELLABLE,
    Bulk.REQUEUE: frozenset({TaskStatus.DEAD}),
    Bulk.PURGE: TERMINAL,
}


@dataclass(frozen=True, slots=True)
class Selection:
    """The tasks a bulk operation touches: of ``statuses`` (never empty; within the
    operation's :data:`BULK_STATUSES`), and of the type, queue and creation window given.
    ``created_after`` is inclusive, ``created_before`` exclusive."""

    statuses: frozenset[TaskStatus]
    type: str | None = None
    queue: str | None = None
    created_after: float | None = None
    created_before: float | None = None


def selects(selection: Selection, task: Task) -> bool:
    """Whether ``selection`` takes in ``task``."""
    return (
        task.status in selection.statuses
        and (selection.type is None or task.type == selection.type)
        and (selection.queue is None or task.queue == selection.queue)
        and (selection.created_after is None or task.created_at >= selection.created_after)
        and (selection.created_before is None or task.created_at < selection.created_before)
    )


def bulk(action: Bulk, task: Task, now: float) -> Change | None:
    """What a bulk cancel or requeue does to one selected task (a purge deletes it)."""
    if action is Bulk.CANCEL:
        return cancel(task, now)
    if action is Bulk.REQUEUE:
        return revive(task, now)
    raise ValueError(f"{action.value} deletes tasks; it does not move them")


# -- retention -------------------------------------------------------------------------


def prunable(task: Task, cutoffs: Mapping[TaskStatus, float]) -> bool:
    """Whether retention deletes ``task``: it ended (``completed``, ``failed``, ``dead`` or
    ``cancelled``) before the cutoff of its status. Statuses without one are kept."""
    cutoff = cutoffs.get(task.status)
    return (
        cutoff is not None
        and task.status in TERMINAL
        and task.finished_at is not None
        and task.finished_at < cutoff
    )


# -- queue controls and per-type limits ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class TypeLimit:
    """What a task type may have at once across every node sharing the store: at most
    ``concurrency`` held (claimed or running), and at most ``rate`` starts in any ``per``
    seconds. ``None`` leaves that side unlimited."""

    concurrency: int | None = None
    rate: int | None = None
    per: float = 1.0


@dataclass(frozen=True, slots=True)
class TypeLoad:
    """What the store holds of one limited type at a claim ``now``.

    ``held``: tasks under a lease (claimed or running); ``unstarted``: those of them not
    yet started; ``recent``: starts recorded in the last ``per`` seconds; ``oldest``: the
    earliest of those, in order — up to the one whose leaving frees a slot (index
    ``recent + unstarted - rate``), so usually one."""

    held: int = 0
    unstarted: int = 0
    recent: int = 0
    oldest: tuple[float, ...] = ()

    def claimed(self, count: int) -> TypeLoad:
        """The load once ``count`` more are claimed."""
        return TypeLoad(self.held + count, self.unstarted + count, self.recent, self.oldest)


class Allowance(NamedTuple):
    """How many of each limited type a claim may take now, and when a type held back by
    its rate may next start one (``None``: none is held back by a rate)."""

    counts: dict[str, int]
    retry_at: float | None


def allowance(limits: dict[str, TypeLimit], loads: dict[str, TypeLoad], now: float) -> Allowance:
    """How many tasks of each limited type may be claimed at ``now``.

    Concurrency counts what is held under a lease, on any node. A rate counts starts: a
    claimed task counts from its claim (it will start), a recorded start for ``per``
    seconds after it; a task given back unstarted is refunded. So in any ``per`` seconds
    (by ``started_at``) at most ``rate`` tasks start.
    """
    counts: dict[str, int] = {}
    retry_at: float | None = None
    for name, limit in limits.items():
        load = loads.get(name, TypeLoad())
        room = _UNLIMITED
        if limit.concurrency is not None:
            room = limit.concurrency - load.held
        if limit.rate is not None:
            free = limit.rate - load.recent - load.unstarted
            if free <= 0:
                # The recorded starts leave the window oldest first: the one whose leaving
                # frees a slot; if that is not a recorded start yet, a window from now.
                frees = now + limit.per
                if -free < len(load.oldest):
                    frees = load.oldest[-free] + limit.per
                retry_at = frees if retry_at is None else min(retry_at, frees)
            room = min(room, free)
        counts[name] = max(0, room)
    return Allowance(counts, retry_at)


def held_until(
    limits: dict[str, TypeLimit],
    loads: dict[str, TypeLoad],
    taken: dict[str, int],
    now: float,
) -> float | None:
    """After a claim took ``taken`` of each type: when a type whose rate is now used up
    may start another (the queue claims again then), or None."""
    after = {name: load.claimed(taken.get(name, 0)) for name, load in loads.items()}
    return allowance(limits, after, now).retry_at


_UNLIMITED = 1 << 30


RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> tuple[int, float]:
    """``"100/m"`` → ``(100, 60.0)``: at most N starts per second, minute or hour."""
    count, sep, unit = text.strip().partition("/")
    if not sep or unit not in RATE_UNITS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"rate_limit {text!r} is not valid: write N/s, N/m or N/h with N >= 1 (e.g. '100/m')"
        )
    return int(count), RATE_UNITS[unit]


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue as the store knows it: paused or not, and its tasks by status."""

    name: str
    paused: bool = False
    paused_at: float | None = None
    counts: dict[str, int] | None = None


def paused_change(state: QueueState | None, name: str, paused: bool, now: float) -> QueueState:
    """A queue paused or resumed at ``now``: pausing a paused queue keeps its time."""
    if state is not None and state.paused == paused:
        return state
    return QueueState(name, paused, now if paused else None)
