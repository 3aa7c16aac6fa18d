"""The messages the runtime's actors exchange. Frozen, one union per actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from ..actors import Ref, Request
from ..lifecycle import Task, TaskEvent, TaskStatus, Transition
from ..scheduling.model import Schedule
from ..stores.base import Counts, NewTask, Outcome, Page, Submitted, TaskFilter

# -- to the store actor ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit(Request[list[Submitted]]):
    tasks: tuple[NewTask, ...]


@dataclass(frozen=True, slots=True)
class Finish:
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    task_id: str
    fraction: float
    message: str | None


@dataclass(frozen=True, slots=True)
class Claim(Request[list[Task]]):
    queues: tuple[str, ...] | None
    limit: int
    owner: str
    lease_until: float


@dataclass(frozen=True, slots=True)
class Promote(Request[float | None]):
    """Queue due delayed and retrying tasks; the reply is the next ``run_at`` still ahead."""


@dataclass(frozen=True, slots=True)
class Heartbeat(Request[set[str]]):
    task_ids: tuple[str, ...]
    owner: str
    lease_until: float


@dataclass(frozen=True, slots=True)
class Release(Request[int]):
    task_ids: tuple[str, ...]
    owner: str


@dataclass(frozen=True, slots=True)
class Recover(Request[int]):
    """Recover tasks whose lease expired."""


@dataclass(frozen=True, slots=True)
class Prune(Request[int]):
    completed_before: float | None
    dead_before: float | None


@dataclass(frozen=True, slots=True)
class Purge(Request[int]):
    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cancel(Request[Transition]):
    task_id: str


@dataclass(frozen=True, slots=True)
class Requeue(Request[Transition]):
    task_id: str


@dataclass(frozen=True, slots=True)
class Get(Request[Task | None]):
    task_id: str


@dataclass(frozen=True, slots=True)
class ListTasks(Request[Page]):
    filter: TaskFilter
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Events(Request[list[TaskEvent]]):
    task_id: str


@dataclass(frozen=True, slots=True)
class GetCounts(Request[Counts]):
    pass


@dataclass(frozen=True, slots=True)
class Ping(Request[bool]):
    pass


@dataclass(frozen=True, slots=True)
class WaitFor(Request[Task]):
    """Replied when the task reaches a terminal status."""

    task_id: str


@dataclass(frozen=True, slots=True)
class SubscribeEvents(Request[None]):
    """Every batch of transitions goes to ``channel`` (dropped for a full channel)."""

    channel: trio.MemorySendChannel[tuple[Transition, ...]]


@dataclass(frozen=True, slots=True)
class SaveSchedule(Request[Schedule]):
    schedule: Schedule


@dataclass(frozen=True, slots=True)
class GetSchedule(Request[Schedule | None]):
    schedule_id: str


@dataclass(frozen=True, slots=True)
class ListSchedules(Request[list[Schedule]]):
    pass


@dataclass(frozen=True, slots=True)
class DeleteSchedule(Request[bool]):
    schedule_id: str


@dataclass(frozen=True, slots=True)
class AdvanceSchedule(Request[bool]):
    schedule_id: str
    expected: float | None
    next_run_at: float | None
    fired_at: float | None


@dataclass(frozen=True, slots=True)
class TryLead(Request[bool]):
    """Become (or stay) the one node that runs ``name`` (scheduler, janitor)."""

    name: str


@dataclass(frozen=True, slots=True)
class Probe:
    """The store actor's own, while the store is down: time to see whether it is back
    (``answered`` is None), or whether it answered."""

    answered: bool | None = None


StoreMsg = (
    Submit
    | Finish
    | Progress
    | Claim
    | Promote
    | Heartbeat
    | Release
    | Recover
    | Prune
    | Purge
    | Cancel
    | Requeue
    | Get
    | ListTasks
    | Events
    | GetCounts
    | Ping
    | WaitFor
    | SubscribeEvents
    | SaveSchedule
    | GetSchedule
    | ListSchedules
    | DeleteSchedule
    | AdvanceSchedule
    | TryLead
    | Probe
)

# -- to the queue actor ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Next(Request[tuple[Task, ...] | None]):
    """A worker asks for work, reporting how its last tasks ended.

    The reply is one task, or a few when the backlog is deep (the worker's prefetch);
    ``None`` means the queue is draining.
    """

    worker: str
    worker_ref: Ref[Any]
    outcomes: tuple[Outcome, ...] = ()
    replaces: Next | None = None  # an earlier request the worker stopped waiting for


@dataclass(frozen=True, slots=True)
class Settle:
    """A stopping worker's last report: outcomes, and tasks it gave back unstarted."""

    worker: str
    outcomes: tuple[Outcome, ...]
    released: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StopAsking:
    """A worker is stopping: answer its waiting ``Next``, if any, with ``None``."""

    worker: str


@dataclass(frozen=True, slots=True)
class WorkReady:
    """Tasks became queued; ``due_at`` is the earliest delayed one, if any."""

    due_at: float | None = None


@dataclass(frozen=True, slots=True)
class CancelRunning:
    task_id: str


@dataclass(frozen=True, slots=True)
class Drain(Request[None]):
    """Stop handing out work: waiting workers get ``None``; buffered tasks go back."""


@dataclass(frozen=True, slots=True)
class ReleaseAll:
    """Shutdown past its grace period: cancel every running handler and give tasks back."""


@dataclass(frozen=True, slots=True)
class WaitIdle(Request[None]):
    """Replied once no task is in a worker's hands."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    name: str
    current_task: str | None
    current_type: str | None
    tasks_done: int


@dataclass(frozen=True, slots=True)
class QueueInfo(Request[tuple[WorkerInfo, ...]]):
    pass


@dataclass(frozen=True, slots=True)
class Tick(Request[None]):
    """The queue's own timer: promote due tasks, heartbeat leases, poll."""


QueueMsg = (
    Next
    | Settle
    | StopAsking
    | WorkReady
    | CancelRunning
    | Drain
    | ReleaseAll
    | WaitIdle
    | QueueInfo
    | Tick
)

# -- to a worker ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelTask:
    """Cancel the handler of ``task_id``; with ``release`` the task goes back to the store."""

    task_id: str
    reason: str = "cancelled by request"
    release: bool = False


WorkerMsg = CancelTask

ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.RETRYING})
