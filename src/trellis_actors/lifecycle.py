"""The task lifecycle: one enum, one transition table, one function that decides."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Generic, NamedTuple

from typing_extensions import TypeVar

from ._time import iso, parse_iso
from .errors import InvalidTransition

#: The type of a task's result (``Any`` unless a task handle says).
R = TypeVar("R", default=Any)


class TaskStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    #: A workflow suspended between continuations: waiting for its steps, a timer or a
    #: signal, holding no worker.
    WAITING = "waiting"

    @property
    def terminal(self) -> bool:
        """No further move happens on its own (``dead`` can still be requeued by hand)."""
        return self in TERMINAL


#: Every allowed move. ``None`` is where a task starts: it is created ``pending``.
TRANSITIONS: dict[TaskStatus | None, frozenset[TaskStatus]] = {
    None: frozenset({TaskStatus.PENDING}),
    TaskStatus.PENDING: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELLED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.COMPLETED,
            TaskStatus.RETRYING,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
            TaskStatus.WAITING,
        }
    ),
    TaskStatus.WAITING: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELLED}),
    TaskStatus.RETRYING: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELLED}),
    TaskStatus.FAILED: frozenset({TaskStatus.DEAD}),
    TaskStatus.DEAD: frozenset({TaskStatus.QUEUED}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}

# Status sets, read off the table above so that they cannot drift from it.

#: A user can cancel a task exactly while it is still on its way.
CANCELLABLE = frozenset(
    status
    for status, moves in TRANSITIONS.items()
    if status is not None and TaskStatus.CANCELLED in moves
)
#: Still on its way: not ended yet (the same statuses as :data:`CANCELLABLE`).
ACTIVE = CANCELLABLE
#: Ended: nothing moves the task on its own (``failed`` goes to the dead letters when its
#: type keeps them, ``dead`` back to ``queued`` when an operator requeues it).
TERMINAL = frozenset(TaskStatus) - ACTIVE
#: The backlog: not started, with a move towards a worker next (``queued`` or
#: ``running``): what a queue's depth counts (a ``waiting`` workflow too: its next run).
BACKLOG = frozenset(
    status for status in ACTIVE if TRANSITIONS[status] & {TaskStatus.QUEUED, TaskStatus.RUNNING}
)
#: Waiting for their ``run_at`` (a delay, a retry's backoff, a workflow's timer) before
#: being queued.
DELAYED = frozenset(status for status in ACTIVE if TaskStatus.QUEUED in TRANSITIONS[status])


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task's attempt failed."""

    type: str
    message: str
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskError:
        """The inverse of :meth:`to_dict`."""
        return cls(data["type"], data["message"], data.get("traceback"))


@dataclass(slots=True, eq=False)
class Task(Generic[R]):
    """A stored task. Times are seconds since the epoch (floats).

    Treat it as a value: nothing mutates a task once made; :func:`evolve` makes a changed
    copy. (It is not ``frozen`` only because a frozen copy costs five times as much, and
    tasks are copied on every transition.)
    """

    id: str
    type: str
    queue: str
    payload: Any
    status: TaskStatus
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 3
    run_at: float = 0.0
    timeout: float | None = None
    idempotency_key: str | None = None
    dead_letter: bool = True
    created_at: float = 0.0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float = 0.0
    result: R | None = None
    error: TaskError | None = None
    progress: float | None = None
    progress_message: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    schedule_id: str | None = None
    trace_context: dict[str, str] | None = None
    #: The node (its lease owner id) and the worker that ran the latest attempt.
    node: str | None = None
    worker: str | None = None
    #: The workflow this task is a step of.
    parent_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO 8601 strings in UTC."""
        return {
            "id": self.id,
            "type": self.type,
            "queue": self.queue,
            "payload": self.payload,
            "status": self.status.value,
            "priority": self.priority,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "run_at": iso(self.run_at),
            "timeout": self.timeout,
            "idempotency_key": self.idempotency_key,
            "created_at": iso(self.created_at),
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "updated_at": iso(self.updated_at),
            "result": self.result,
            "error": None if self.error is None else self.error.to_dict(),
            "progress": (
                None
                if self.progress is None
                else {"fraction": self.progress, "message": self.progress_message}
            ),
            "lease": (
                None
                if self.lease_owner is None
                else {"owner": self.lease_owner, "expires_at": iso(self.lease_expires_at)}
            ),
            "schedule_id": self.schedule_id,
            "node": self.node,
            "worker": self.worker,
            "parent_id": self.parent_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task[Any]:
        """The inverse of :meth:`to_dict` (a task as the HTTP API sends it): ISO times
        back to epoch seconds. Raises KeyError or ValueError for anything else."""
        progress = data.get("progress") or {}
        lease = data.get("lease") or {}
        error = data.get("error")
        return cls(
            id=data["id"],
            type=data["type"],
            queue=data["queue"],
            payload=data.get("payload"),
            status=TaskStatus(data["status"]),
            priority=data.get("priority", 0),
            attempt=data.get("attempt", 0),
            max_attempts=data.get("max_attempts", 3),
            run_at=_epoch(data.get("run_at")) or 0.0,
            timeout=data.get("timeout"),
            idempotency_key=data.get("idempotency_key"),
            created_at=_epoch(data.get("created_at")) or 0.0,
            queued_at=_epoch(data.get("queued_at")),
            started_at=_epoch(data.get("started_at")),
            finished_at=_epoch(data.get("finished_at")),
            updated_at=_epoch(data.get("updated_at")) or 0.0,
            result=data.get("result"),
            error=None if error is None else TaskError.from_dict(error),
            progress=progress.get("fraction"),
            progress_message=progress.get("message"),
            lease_owner=lease.get("owner"),
            lease_expires_at=_epoch(lease.get("expires_at")),
            schedule_id=data.get("schedule_id"),
            node=data.get("node"),
            worker=data.get("worker"),
            parent_id=data.get("parent_id"),
        )


def _epoch(text: str | None) -> float | None:
    return None if text is None else parse_iso(text)


@dataclass(slots=True)
class NewTask:
    """A task to create, with every default already resolved. Treat it as a value (a
    plain slots class: one is made per submission, and a frozen one costs twice as much)."""

    type: str
    payload: Any
    queue: str = "default"
    priority: int = 0
    run_at: float | None = None  # None: due at once
    max_attempts: int = 3
    timeout: float | None = None
    idempotency_key: str | None = None
    dead_letter: bool = True
    schedule_id: str | None = None
    trace_context: dict[str, str] | None = None
    #: The workflow this task is a step of.
    parent_id: str | None = None


class TaskEvent(NamedTuple):
    """One move in a task's history. (A named tuple: immutable and cheap to make.)"""

    task_id: str
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: float
    attempt: int
    detail: str | None = None
    #: Where the attempt ran: on moves to and from ``running`` (its start and its end).
    node: str | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "from": None if self.from_status is None else self.from_status.value,
            "to": self.to_status.value,
            "at": iso(self.at),
            "attempt": self.attempt,
            "detail": self.detail,
            "node": self.node,
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskEvent:
        """The inverse of :meth:`to_dict`."""
        source = data.get("from")
        return cls(
            data["task_id"],
            None if source is None else TaskStatus(source),
            TaskStatus(data["to"]),
            _epoch(data.get("at")) or 0.0,
            data.get("attempt", 0),
            data.get("detail"),
            data.get("node"),
            data.get("worker"),
        )


class Transition(NamedTuple):
    """A task after a move, with the event that records the move."""

    task: Task
    event: TaskEvent


class Recorded(NamedTuple):
    """A transition as the store recorded it: its event, the event's id in the store's
    log of every transition (ids grow; a client resumes after one), and the task as it
    stood when the event was read (it may have moved on since)."""

    id: int
    task: Task
    event: TaskEvent


_TASK_FIELDS = frozenset(f.name for f in fields(Task))


def _copier() -> Any:
    """``copy(task)``: a shallow copy of a task, one attribute store per field."""
    lines = ["def copy(task):", "    new = _new(Task)"]
    lines += [f"    new.{name} = task.{name}" for name in sorted(_TASK_FIELDS)]
    lines.append("    return new")
    namespace: dict[str, Any] = {"Task": Task, "_new": object.__new__}
    exec("\n".join(lines), namespace)  # code built from the field names only
    return namespace["copy"]


_copy = _copier()


def evolve(task: Task, changes: dict[str, Any]) -> Task:
    """A copy of ``task`` with ``changes``: ``dataclasses.replace`` without its overhead."""
    moved: Task = _copy(task)
    _apply(moved, changes)
    return moved


def _apply(task: Task, changes: dict[str, Any]) -> None:
    try:
        for name, value in changes.items():
            setattr(task, name, value)
    except AttributeError:  # a slots class has no room for other names
        raise TypeError(f"Task has no field(s) {sorted(changes.keys() - _TASK_FIELDS)}") from None


def check(task_id: str, from_status: TaskStatus | None, to: TaskStatus) -> None:
    """Raise :class:`InvalidTransition` unless the table allows ``from_status → to``."""
    if to not in TRANSITIONS[from_status]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[from_status])) or "nothing"
        source = "(new)" if from_status is None else from_status.value
        raise InvalidTransition(
            f"task {task_id} cannot move from {source} to {to.value}; "
            f"from {source} it may move to: {allowed}"
        )


def transition(
    task: Task, to: TaskStatus, *, at: float, detail: str | None = None, **changes: Any
) -> Transition:
    """Move ``task`` to ``to`` at time ``at``: the only place a status changes.

    Sets the timestamp that belongs to the new status, clears the lease unless the task
    moves to ``running`` (a lease is held while a task is claimed or runs), and applies
    ``changes`` (result, error, run_at, attempt, ...), which win over those defaults.
    """
    source = task.status
    if to not in TRANSITIONS[source]:
        check(task.id, source, to)
    # Every task is copied on every move, so this is written for speed: one copy, then
    # plain attribute stores.
    moved: Task = _copy(task)
    if to is TaskStatus.QUEUED:
        moved.queued_at = at
    elif to is TaskStatus.RUNNING:
        moved.started_at = at
    elif to in TERMINAL:
        moved.finished_at = at
    if to is not TaskStatus.RUNNING:
        moved.lease_owner = None
        moved.lease_expires_at = None
    if changes:
        _apply(moved, changes)
    moved.status = to
    moved.updated_at = at
    if to is TaskStatus.RUNNING or source is TaskStatus.RUNNING:  # an attempt's start or end
        event = TaskEvent(task.id, source, to, at, moved.attempt, detail, moved.node, moved.worker)
        return Transition(moved, event)
    return Transition(moved, TaskEvent(task.id, source, to, at, moved.attempt, detail))


def created(task: Task, *, detail: str | None = None) -> Transition:
    """The first event of every task: it comes into being ``pending``."""
    check(task.id, None, TaskStatus.PENDING)
    return Transition(
        task, TaskEvent(task.id, None, TaskStatus.PENDING, task.created_at, 0, detail)
    )


def requeued(task: Task, *, at: float) -> Transition:
    """An operator's requeue: only a ``dead`` task may go back, with fresh attempts.

    (The table also lets ``pending`` and ``retrying`` tasks become ``queued``, but those
    moves belong to the runtime, not to a requeue.)
    """
    if task.status is not TaskStatus.DEAD:
        raise InvalidTransition(
            f"task {task.id} is {task.status.value}; only dead tasks can be requeued"
        )
    return transition(
        task,
        TaskStatus.QUEUED,
        at=at,
        detail="requeued by request",
        attempt=0,
        run_at=at,
        error=None,
        result=None,
        finished_at=None,
    )
