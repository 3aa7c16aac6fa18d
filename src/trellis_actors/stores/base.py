"""The store protocol: what every store (memory, SQLite, PostgreSQL) provides.

A store is owned by one store actor; nothing else calls it. Every method takes the time
``now`` from its caller and never reads a clock itself, so stores are deterministic and run
under virtual time. Every status change goes through :func:`trellis_actors.lifecycle.transition`
and each mutating method returns the transitions it made, in order, for publication.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import trio

from .. import _ids
from ..decisions import Bulk, QueueState, Selection, TypeLimit
from ..decisions import Outcome as Outcome
from ..lifecycle import NewTask as NewTask
from ..lifecycle import Recorded, Task, TaskEvent, TaskStatus, Transition, created, transition
from ..rules import TASK_DATA
from ..scheduling.model import Schedule
from ..workflows import WorkflowState
from .nodes import NodeInfo
from .sessions import Session

# NewTask and Outcome are made once per task, and a frozen dataclass costs twice as much
# to make: they are plain slots classes, treated as values all the same.


class Submitted(NamedTuple):
    """The stored task, and whether this call created it (False: idempotency-key repeat)."""

    task: Task
    created: bool


class ClaimRequest(NamedTuple):
    """The arguments of one :meth:`Store.claim`."""

    queues: Sequence[str] | None
    limit: int
    owner: str
    lease_until: float
    exclude: Sequence[str] = ()  # task types not to claim (at their concurrency limit)


@dataclass(slots=True)
class Work:
    """What one store batch writes on the hot path: new tasks, outcomes, then claims."""

    tasks: Sequence[NewTask] = ()
    outcomes: Sequence[Outcome] = ()
    claims: Sequence[ClaimRequest] = ()


class WorkDone(NamedTuple):
    submitted: list[Submitted]  # one per new task, in order
    arrived: list[Transition]  # the new tasks' moves
    finished: list[Transition]
    claimed: list[list[Task]]  # one list per claim, in order: leased, still queued


async def apply_in_turn(store: Store, work: Work, now: float) -> WorkDone:
    """:meth:`Store.apply` as three kinds of call, for a store whose calls are cheap."""
    submitted, arrived = await store.enqueue(work.tasks, now) if work.tasks else ([], [])
    finished = await store.finish(work.outcomes, now) if work.outcomes else []
    claimed = [
        await store.claim(c.queues, c.limit, c.owner, c.lease_until, now, c.exclude)
        for c in work.claims
    ]
    return WorkDone(submitted, arrived, finished, claimed)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks a listing shows, and in which order: every field given must match.

    ``id_prefix`` is the start of a task id (lowercase, as ids are written);
    ``created_after`` is inclusive and ``created_before`` exclusive (seconds since the epoch).
    A listing pages by id, newest first, or with ``oldest_first`` oldest first; a page's
    ``next_cursor`` carries on in the same order.
    """

    status: TaskStatus | None = None
    type: str | None = None
    queue: str | None = None
    id_prefix: str | None = None
    idempotency_key: str | None = None
    schedule_id: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    oldest_first: bool = False

    def id_range(self) -> tuple[str, str]:
        """The lowest and highest ids that start with :attr:`id_prefix` (all ids without)."""
        prefix = self.id_prefix or ""
        return prefix + _LOWEST_ID[len(prefix) :], prefix + _HIGHEST_ID[len(prefix) :]

    def matches(self, task: Task) -> bool:
        """Whether ``task`` passes every filter (the memory store's check)."""
        low, high = self.id_range()
        return (
            (self.status is None or task.status is self.status)
            and (self.type is None or task.type == self.type)
            and (self.queue is None or task.queue == self.queue)
            and low <= task.id <= high
            and (self.idempotency_key is None or task.idempotency_key == self.idempotency_key)
            and (self.schedule_id is None or task.schedule_id == self.schedule_id)
            and (self.created_after is None or task.created_at >= self.created_after)
            and (self.created_before is None or task.created_at < self.created_before)
        )


_LOWEST_ID = "00000000-0000-0000-0000-000000000000"
_HIGHEST_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


#: Most tasks one bulk step or one prune round touches: one store transaction, short
#: enough that other work waits little for it.
BULK_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class BulkStep:
    """One chunk of a bulk operation: the first ``limit`` tasks that ``selection`` takes
    in, by id, of ids after ``after`` (None: from the first) and before ``until`` (the
    operation's bound, so that tasks made meanwhile are not chased)."""

    action: Bulk
    selection: Selection
    until: str
    after: str | None = None
    limit: int = BULK_CHUNK
    dry_run: bool = False  # count them, touch nothing


class BulkDone(NamedTuple):
    """What one :class:`BulkStep` did: how many tasks it touched (or, dry, would touch),
    their moves, and the id to go on after (None: none are left); ``held``: the tasks it
    cancelled that a node held under a lease (claimed or running), whose holder must stop
    them."""

    touched: int
    moves: list[Transition]
    after: str | None
    held: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of tasks, newest first; pass ``next_cursor`` back for the next page."""

    items: list[Task]
    next_cursor: str | None


class Finished(NamedTuple):
    """A task that ended (completed, or dead after its last attempt), for statistics."""

    type: str
    ok: bool  # completed (else dead)
    finished_at: float
    started_at: float | None  # of its last attempt

    @property
    def duration(self) -> float | None:
        return None if self.started_at is None else self.finished_at - self.started_at


def fitting(sizes: Sequence[int], max_bytes: int | None) -> int:
    """How many of ``sizes``, from the first, fit in ``max_bytes`` together (one at least)."""
    if max_bytes is None:
        return len(sizes)
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > max_bytes:
            return max(count, 1)
    return len(sizes)


@dataclass(frozen=True, slots=True)
class Counts:
    """Number of tasks per (queue, status)."""

    by_queue: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, status: TaskStatus) -> int:
        return sum(per.get(status.value, 0) for per in self.by_queue.values())


def arrive(new: NewTask, now: float) -> list[Transition]:
    """A new task's first moves: created ``pending``, then ``queued`` when already due."""
    task = Task(
        id=_ids.new_id(),
        type=new.type,
        queue=new.queue,
        payload=new.payload,
        status=TaskStatus.PENDING,
        priority=new.priority,
        max_attempts=new.max_attempts,
        run_at=now if new.run_at is None else new.run_at,
        timeout=new.timeout,
        idempotency_key=new.idempotency_key,
        dead_letter=new.dead_letter,
        created_at=now,
        updated_at=now,
        schedule_id=new.schedule_id,
        trace_context=new.trace_context,
        parent_id=new.parent_id,
    )
    steps = [created(task)]
    if task.run_at <= now:
        steps.append(transition(task, TaskStatus.QUEUED, at=now))
    return steps


class SingleNode:
    """The multi-node part of the protocol for stores only one process uses."""

    async def watch(
        self,
        notify: Callable[[], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Runs until cancelled: no other process adds work here, so nothing to hear."""
        task_status.started()
        await trio.sleep_forever()

    async def try_lead(self, name: str) -> bool:
        """Always True: the one process using the store leads."""
        return True

    async def resign(self, name: str) -> None:
        pass


class Store(Protocol):
    """Durable (or not) home of tasks and their events."""

    url: str

    async def open(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None:
        """Release every connection and thread."""

    async def ping(self) -> bool:
        """True when the store answers."""

    async def watch(
        self,
        notify: Callable[[], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled, calling ``notify()`` whenever another process enqueued,
        promoted or retried work (PostgreSQL ``LISTEN``); started (``nursery.start``) once
        listening. Stores that only this process writes just wait. Leaves no thread or
        connection behind when cancelled."""

    async def try_lead(self, name: str) -> bool:
        """True when this store holds the leadership called ``name`` (a janitor's or a
        scheduler's): taken now, or still held. Call it before each round of leader-only
        work; stores with a single node always lead."""

    async def resign(self, name: str) -> None:
        """Give up the leadership ``name`` (nothing happens when it is not held)."""

    @property
    def held_until(self) -> float | None:
        """After a claim: when a type its rate limit held back may next start one (the
        queue claims again then), or None."""

    def set_limits(self, limits: dict[str, TypeLimit]) -> None:
        """The cluster-wide limits of task types, which every claim keeps to
        (:func:`trellis_actors.decisions.allowance`): at most ``concurrency`` held under
        leases, at most ``rate`` starts in any ``per`` seconds, on all nodes together."""

    async def pause_queue(self, name: str, paused: bool, now: float) -> QueueState:
        """Pause (or resume) a queue for every node: no claim takes a paused queue's
        tasks; tasks already claimed or running go on, submissions are still accepted."""

    async def queue_states(self) -> list[QueueState]:
        """Every queue that has tasks or was ever paused, by name, with its counts."""

    async def enqueue(
        self, tasks: Sequence[NewTask], now: float
    ) -> tuple[list[Submitted], list[Transition]]:
        """Create tasks (``pending``, then ``queued`` when due), in one commit.

        A task whose ``idempotency_key`` is already stored is not created again: the
        existing task is returned with ``created=False``.
        """

    async def apply(self, work: Work, now: float) -> WorkDone:
        """Enqueue ``work.tasks``, finish ``work.outcomes``, then make ``work.claims``, in
        that order and in one commit where the store has commits: a group commit of a
        whole batch of the store actor's mail."""

    async def promote_due(self, now: float, limit: int) -> list[Transition]:
        """Move ``pending`` and ``retrying`` tasks whose ``run_at`` has come to ``queued``."""

    async def next_due_at(self) -> float | None:
        """The earliest ``run_at`` among ``pending`` and ``retrying`` tasks."""

    async def claim(
        self,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        """Lease up to ``limit`` ``queued`` tasks nobody holds to ``owner`` (none of the
        types in ``exclude``): highest priority first, FIFO within a priority. They stay
        ``queued`` — no move, no attempt counted — until a start is reported
        (:func:`trellis_actors.decisions.claim`)."""

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Transition]:
        """Record the starts and outcomes that the tasks' lease holders report, in one
        commit (:func:`trellis_actors.decisions.settle`); anything else is ignored. A
        workflow's outcome writes its continuation too (history, signals received, new
        steps), and one ending ``waiting`` is queued again if what it waits for happened
        meanwhile (:func:`trellis_actors.workflows.stirs`). Every step that ends, here
        or in any other call, is written into its workflow's history and wakes it."""

    async def heartbeat(self, task_ids: Sequence[str], owner: str, lease_until: float) -> set[str]:
        """Extend leases; returns the ids still held (claimed or running) by ``owner``."""

    async def release(self, task_ids: Sequence[str], owner: str, now: float) -> list[Transition]:
        """Give held tasks back (a stopping node): unstarted ones to the queue as they
        were, running ones to ``retrying`` due at once, the attempt not counted."""

    async def recover_expired(self, now: float) -> list[Transition]:
        """Tasks whose lease expired (:func:`trellis_actors.decisions.expire`)."""

    async def cancel(self, task_id: str, now: float) -> list[Transition]:
        """Cancel a pending, queued, retrying, running or waiting task (raises
        TaskNotFound or InvalidTransition): its move first, then what follows from it
        in the same commit (a workflow's steps cancelled, a step's workflow woken)."""

    async def workflow(self, workflow_id: str) -> WorkflowState | None:
        """A workflow's task with its history, its signals and its steps' tasks (None
        when there is no such task)."""

    async def signal(
        self, workflow_id: str, name: str, payload: object, now: float
    ) -> list[Transition]:
        """Keep a signal for a workflow until it is received, waking the workflow if it
        waits (raises TaskNotFound, or WorkflowEnded once it has ended)."""

    async def requeue(self, task_id: str, now: float) -> Transition:
        """A dead task goes back to ``queued`` with its attempts starting again."""

    async def set_progress(
        self, task_id: str, fraction: float, message: str | None, now: float
    ) -> None:
        """Record a running task's progress."""

    async def get(self, task_id: str) -> Task | None: ...

    async def list_tasks(
        self,
        filter: TaskFilter,
        limit: int,
        cursor: str | None,
        include: frozenset[str] = TASK_DATA,
        max_bytes: int | None = None,
    ) -> Page:
        """At most ``limit`` tasks, newest first: ``payload`` and ``result`` are None
        unless ``include`` names them (it names both by default); a listing without them
        does not read them. With ``include``, a page stops before its included data (as
        stored JSON) passes ``max_bytes``, holding one task at least; ``next_cursor`` then
        points at the rest."""
        ...

    async def events(self, task_id: str) -> list[TaskEvent]:
        """The task's history, oldest first (empty when the task does not exist)."""

    async def events_after(self, after: int, limit: int) -> list[Recorded]:
        """Every task's transitions recorded after the event ``after`` (0: from the
        oldest kept), each once, in the order a reader must take them, at most ``limit``.
        Reading on from the last one returned misses none, even of transactions that were
        still in flight: on PostgreSQL those committed out of id order are held back
        until every earlier one has ended. An ``after`` pruned since resumes at the
        oldest event kept after it."""

    async def last_event_id(self) -> int:
        """The event to read on from for transitions recorded from now on (0: none)."""

    async def counts(self) -> Counts: ...

    async def finished_since(self, since: float, limit: int) -> list[Finished]:
        """Tasks completed or dead at or after ``since``, the latest first, at most
        ``limit`` of them (the UI's charts)."""

    async def bulk(self, step: BulkStep, now: float) -> BulkDone:
        """One chunk of a bulk operation, in one commit: each selected task cancelled or
        requeued (:func:`trellis_actors.decisions.bulk`) or, for a purge, deleted with its
        events."""

    async def prune(self, cutoffs: Mapping[TaskStatus, float], limit: int) -> int:
        """Delete up to ``limit`` ended tasks that finished before the cutoff of their
        status (:func:`trellis_actors.decisions.prunable`), with their events, in one
        commit. Returns how many were deleted: ``limit`` means there may be more."""

    async def purge(self, task_ids: Sequence[str]) -> int:
        """Delete the given tasks that are ``dead``, with their events; returns how many."""

    # -- schedules ---------------------------------------------------------------------
    async def save_schedule(self, schedule: Schedule) -> Schedule:
        """Insert or replace a schedule (by id). Names are unique: a clash raises
        ``ValidationError`` with ``field="name"``."""

    async def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, ordered by name."""

    async def delete_schedule(self, schedule_id: str) -> bool: ...

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float | None,
        next_run_at: float | None,
        fired_at: float | None,
    ) -> bool:
        """Move ``next_run_at`` on, only if it still equals ``expected`` (so two schedulers
        never both advance a slot); ``fired_at`` (when not None) becomes ``last_run_at``."""

    # -- web UI login sessions (rows keyed by the sha256 of the session id) -------------
    async def save_session(self, session: Session) -> None:
        """Insert or replace a session (by key)."""

    async def get_session(self, key: str) -> Session | None: ...

    async def touch_session(self, key: str, seen_at: float) -> bool:
        """Record a use of the session; False when there is no such session."""

    async def delete_session(self, key: str) -> bool:
        """End a session (a logout); False when there was none."""

    async def prune_sessions(self, seen_before: float, now: float) -> int:
        """Delete sessions idle since before ``seen_before`` or past their ``expires_at``
        at ``now``; returns how many."""

    # -- the nodes registry (one heartbeat row per running node) -------------------------
    async def save_node(self, node: NodeInfo) -> None:
        """Insert or replace a node's row (by id): its heartbeat."""

    async def list_nodes(self) -> list[NodeInfo]:
        """Every node's row, ordered by id."""

    async def delete_node(self, node_id: str) -> bool:
        """Remove a node's row (it stopped); False when there was none."""

    async def prune_nodes(self, now: float) -> int:
        """Delete rows not seen for :data:`~trellis_actors.stores.nodes.FORGET_AFTER` of
        their heartbeats at ``now``; returns how many."""
