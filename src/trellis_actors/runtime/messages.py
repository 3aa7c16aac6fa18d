"""The messages the runtime's actors exchange. Frozen, one union per actor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ..actors import Ref, Request
from ..decisions import QueueState
from ..lifecycle import Recorded, Task, TaskEvent, TaskStatus, Transition
from ..scheduling.define import ScheduleDefinition
from ..scheduling.model import Schedule
from ..stores.base import (
    BulkDone,
    BulkStep,
    Counts,
    Finished,
    NewTask,
    Outcome,
    Page,
    Submitted,
    TaskFilter,
)
from ..workflows import WorkflowState
from .node_messages import NodeStoreMsg
from .session_messages import SessionMsg

# -- to the store actor ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit(Request[list[Submitted]]):
    tasks: tuple[NewTask, ...]


@dataclass(frozen=True, slots=True)
class Finish(Request[None]):
    """Starts and outcomes from the queue, for one commit. Usually told (the reply is not
    awaited); a stopping queue asks, so that it exits only once they are committed."""

    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    task_id: str
    fraction: float
    message: str | None


@dataclass(frozen=True, slots=True)
class Claim(Request[list[Task]]):
    """Lease queued tasks to this node; they stay queued until their handlers start."""

    queues: tuple[str, ...] | None
    limit: int
    owner: str
    lease_until: float
    exclude: tuple[str, ...] = ()  # task types at their concurrency limit here


@dataclass(frozen=True, slots=True)
class Demand:
    """The queue's standing demand: what it would claim now for its idle workers, which
    no stored task met. When the store next commits new due tasks, it runs this claim in
    the same transaction and tells the queue what it took (``Claimed``), saving a round
    trip. ``limit`` 0 withdraws it; each later ``Demand`` replaces the last."""

    queues: tuple[str, ...] | None
    limit: int
    owner: str
    lease: float  # seconds: the lease runs from the commit
    exclude: tuple[str, ...] = ()  # task types at their concurrency limit here


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
    """Delete up to ``limit`` ended tasks past their status's cutoff (one chunk)."""

    cutoffs: Mapping[TaskStatus, float]
    limit: int


@dataclass(frozen=True, slots=True)
class BulkChunk(Request[BulkDone]):
    """One chunk of a bulk cancel, requeue or purge: one commit, then other mail."""

    step: BulkStep


@dataclass(frozen=True, slots=True)
class Purge(Request[int]):
    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cancel(Request[list[Transition]]):
    """The task's move first, then what followed (a workflow's steps cancelled, ...)."""

    task_id: str


@dataclass(frozen=True, slots=True)
class LoadWorkflow(Request[WorkflowState | None]):
    workflow_id: str


@dataclass(frozen=True, slots=True)
class Signal(Request[None]):
    workflow_id: str
    name: str
    payload: Any


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
    include: frozenset[str] = frozenset()
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Events(Request[list[TaskEvent]]):
    task_id: str


@dataclass(frozen=True, slots=True)
class GetCounts(Request[Counts]):
    pass


@dataclass(frozen=True, slots=True)
class FinishedSince(Request[list[Finished]]):
    since: float
    limit: int


@dataclass(frozen=True, slots=True)
class PauseQueue(Request[QueueState]):
    """Pause (``paused``) or resume a queue, for every node sharing the store."""

    name: str
    paused: bool


@dataclass(frozen=True, slots=True)
class ListQueues(Request[list[QueueState]]):
    pass


@dataclass(frozen=True, slots=True)
class Ping(Request[bool]):
    pass


@dataclass(frozen=True, slots=True)
class WaitFor(Request[Task]):
    """Replied when the task reaches a terminal status."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """The last thing a subscription receives when the store drops it, saying why."""

    reason: str


#: What a subscription's channel carries: batches of transitions, then maybe why it ended.
Published = tuple[Transition, ...] | Unsubscribed


@dataclass(frozen=True, slots=True)
class SubscribeEvents(Request[None]):
    """Every batch of transitions goes to ``channel``. A subscriber that falls a whole
    buffer behind is dropped: its last free slot takes an :class:`Unsubscribed`, and
    the channel is closed (the store never waits for a subscriber, nor buffers more)."""

    channel: trio.MemorySendChannel[Published]


@dataclass(frozen=True, slots=True)
class EventsAfter(Request[list[Recorded]]):
    """Every task's transitions recorded after the event ``after`` (see
    ``Store.events_after``), at most ``limit``."""

    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class LastEventId(Request[int]):
    """The event to read on from for transitions recorded from now on."""


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
    | Demand
    | Promote
    | Heartbeat
    | Release
    | Recover
    | Prune
    | BulkChunk
    | Purge
    | Cancel
    | LoadWorkflow
    | Signal
    | Requeue
    | Get
    | ListTasks
    | Events
    | GetCounts
    | FinishedSince
    | PauseQueue
    | ListQueues
    | Ping
    | WaitFor
    | SubscribeEvents
    | EventsAfter
    | LastEventId
    | SaveSchedule
    | GetSchedule
    | ListSchedules
    | DeleteSchedule
    | AdvanceSchedule
    | TryLead
    | Probe
    | SessionMsg
    | NodeStoreMsg
)


# -- to the queue actor ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    """A worker is idle and wants work, reporting how its last tasks went: the outcomes
    of those it ran and the ids of those it gave back unstarted. ``stopping``: it wants no
    more work (its last report)."""

    worker: str
    incarnation: int  # which start of the worker (its supervisor's count)
    worker_ref: Ref[Any]
    outcomes: tuple[Outcome, ...] = ()
    released: tuple[str, ...] = ()
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class Started:
    """A handler started: from now on its task is ``running`` and the attempt counts."""

    worker: str
    task_id: str
    attempt: int
    at: float  # store clock


@dataclass(frozen=True, slots=True)
class ReportProgress:
    """A running handler's progress, passed on to the store after the task's start."""

    task_id: str
    fraction: float
    message: str | None


@dataclass(frozen=True, slots=True)
class WorkerDown:
    """A worker incarnation stopped or crashed (from the registry): what it held is
    settled — started tasks as crashed attempts, the rest given back."""

    worker: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class WorkReady:
    """Tasks became queued; ``due_at`` is the earliest delayed one, if any."""

    due_at: float | None = None


@dataclass(frozen=True, slots=True)
class HeldBack:
    """A claim left tasks queued under a type's rate limit until ``until`` (store clock):
    claim again then."""

    until: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """Tasks the store claimed for the queue's standing ``Demand`` in the commit that
    stored them: leased, still queued, as a ``Claim``'s reply."""

    tasks: tuple[Task, ...]


@dataclass(frozen=True, slots=True)
class CancelRunning:
    task_id: str


@dataclass(frozen=True, slots=True)
class Drain(Request[None]):
    """Stop handing out work; claimed tasks not yet handed out go back to the store."""


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
class Tick:
    """The queue's own timer: flush, promote due tasks, renew leases, poll."""


QueueMsg = (
    Ready
    | Started
    | ReportProgress
    | WorkerDown
    | WorkReady
    | HeldBack
    | Claimed
    | CancelRunning
    | Drain
    | ReleaseAll
    | WaitIdle
    | QueueInfo
    | Tick
)


# -- to a worker ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Assign:
    """Tasks to run, in order (claimed, not started: each runs as attempt ``attempt + 1``).
    ``fast``: measured as quick, so their starts may be reported with their outcomes,
    unless the batch runs past the prefetch budget."""

    tasks: tuple[Task, ...]
    fast: bool = False


@dataclass(frozen=True, slots=True)
class CancelTask:
    """Cancel attempt ``attempt`` of ``task_id``; with ``release`` the task goes back to
    the queue. A cancel for any other attempt, or a task no longer in hand, is ignored."""

    task_id: str
    attempt: int
    reason: str = "cancelled by request"
    release: bool = False


@dataclass(frozen=True, slots=True)
class Reask:
    """The worker's timer: still idle, so say so again (the queue may have restarted)."""


@dataclass(frozen=True, slots=True)
class Late:
    """The worker's timer: a batch of fast tasks ran past the budget; report its starts."""


WorkerMsg = Assign | CancelTask | Reask | Late


# -- to the scheduler -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateSchedule(Request[Schedule]):
    definition: ScheduleDefinition


@dataclass(frozen=True, slots=True)
class UpdateSchedule(Request[Schedule]):
    schedule_id: str
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RemoveSchedule(Request[bool]):
    schedule_id: str


@dataclass(frozen=True, slots=True)
class RunNow(Request[Task]):
    schedule_id: str


@dataclass(frozen=True, slots=True)
class Wake:
    """Sent by the scheduler's own timer: fire what is due, then arm the timer again."""


SchedulerMsg = CreateSchedule | UpdateSchedule | RemoveSchedule | RunNow | Wake

# -- to the janitor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Swept:
    """What one janitor round did: nothing unless this node leads the janitors."""

    led: bool
    recovered: int = 0
    pruned: int = 0


@dataclass(frozen=True, slots=True)
class JanitorTick:
    """The janitor's periodic timer: do a round."""


@dataclass(frozen=True, slots=True)
class Sweep(Request[Swept]):
    """Do a round now (for operators and tests); the reply says what it did."""


JanitorMsg = JanitorTick | Sweep


# -- to the event feed ------------------------------------------------------------------

#: What a follower's channel carries: batches of recorded transitions, oldest first.
FeedBatch = tuple[Recorded, ...]


@dataclass(frozen=True, slots=True)
class Follow(Request[int]):
    """Send ``channel`` every transition recorded after the event ``after`` (None: from
    now on), in batches. The reply is the event id it starts after."""

    channel: trio.MemorySendChannel[FeedBatch]
    after: int | None


@dataclass(frozen=True, slots=True)
class FeedWake:
    """The store committed transitions, here or (heard of) elsewhere: read on."""


@dataclass(frozen=True, slots=True)
class FeedTick:
    """The feed's poll timer: read on (other nodes commit without telling this one)."""


FeedMsg = Follow | FeedWake | FeedTick
