"""The async face of the SQL stores: one transaction per call, in a worker thread (or, for
a short call on a store that can, on the event loop itself)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from ..decisions import QueueState, TypeLimit
from ..lifecycle import Recorded, Task, TaskEvent, TaskStatus, Transition
from ..rules import TASK_DATA
from ..scheduling.model import Schedule
from ..workflows import WorkflowState
from ._sql import Cursor
from ._sqllogic import TaskLogic
from .base import (
    BulkDone,
    BulkStep,
    ClaimRequest,
    Counts,
    Finished,
    NewTask,
    Outcome,
    Page,
    Submitted,
    TaskFilter,
    Work,
    WorkDone,
)
from .nodes import NodeInfo
from .sessions import Session

P = ParamSpec("P")
T = TypeVar("T")

#: Rows up to which a call counts as short (see :meth:`SqlStore._call_short`).
SHORT = 16


class SqlStore:
    """The async store protocol over :class:`TaskLogic`: one transaction per call.

    Subclasses implement :meth:`_call` (run ``fn(cursor, …)`` in a transaction, in a worker
    thread), may implement :meth:`_call_short`, and implement the connection-level methods
    (``open``, ``close``, ``ping``, ``watch``, ``try_lead``, ``resign``).
    """

    url: str
    _logic: TaskLogic
    #: The driver's base error (``sqlite3.Error``, ``psycopg.Error``): a failed ping.
    _driver_error: type[Exception] = Exception
    #: How many tasks the last claim took: the guess at how many the next one will take.
    _claimed_last: int = 0
    #: Whether a claim with nothing else to write, after one that took nothing, first
    #: reads whether there is anything to take (see :meth:`_nothing_to_claim`).
    _read_before_claiming: bool = False

    async def ping(self) -> bool:
        try:
            await self._call(False, self._logic.ping)
        except (self._driver_error, RuntimeError):
            return False
        return True

    async def _call(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        raise NotImplementedError

    async def _call_short(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`_call` for a call that touches at most about :data:`SHORT` rows: the hot
        path of an idle or lightly loaded node. A store whose database answers that fast
        (SQLite) runs it on the event loop, without a thread's two hops; by default it is
        an ordinary call."""
        return await self._call(write, fn, *args, **kwargs)

    async def _sized(
        self,
        rows: int,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A call about ``rows`` rows: short, or in a thread."""
        if rows <= SHORT:
            return await self._call_short(write, fn, *args, **kwargs)
        return await self._call(write, fn, *args, **kwargs)

    async def enqueue(
        self, tasks: Sequence[NewTask], now: float
    ) -> tuple[list[Submitted], list[Transition]]:
        if not tasks:
            return [], []
        return await self._sized(len(tasks), True, self._logic.enqueue, tasks, now)

    @property
    def held_until(self) -> float | None:
        """When the last claim's rate limits next let a held-back type start one."""
        return self._logic.held_until

    def set_limits(self, limits: dict[str, TypeLimit]) -> None:
        self._logic.limits = dict(limits)

    async def pause_queue(self, name: str, paused: bool, now: float) -> QueueState:
        return await self._call(True, self._logic.pause_queue, name, paused, now)

    async def queue_states(self) -> list[QueueState]:
        return await self._call(False, self._logic.queue_states)

    async def apply(self, work: Work, now: float) -> WorkDone:
        if not work.tasks and not work.outcomes and await self._nothing_to_claim(work.claims):
            return WorkDone([], [], [], [[] for _ in work.claims])
        claims = sum(self._claim_rows(c.limit) for c in work.claims)
        rows = len(work.tasks) + len(work.outcomes) + claims
        done = await self._sized(rows, True, self._logic.apply, work, now)
        if work.claims:
            self._claimed_last = sum(map(len, done.claimed))
        return done

    async def _nothing_to_claim(self, claims: Sequence[ClaimRequest]) -> bool:
        """True when a read finds nothing that ``claims`` could take, so that no write
        transaction is needed. Only on a store that reads first (SQLite: a write
        transaction, even one that writes nothing, holds the file's one write lock, which
        a producer in another process waits for), only after a claim that took nothing
        (the likely time for another), and not while task types have limits (a claim
        also works out when a held type may start next)."""
        if not claims or not self._read_before_claiming or self._claimed_last:
            return False
        if self._logic.limits:
            return False
        return not await self._call_short(False, self._logic.any_claimable, claims)

    def _claim_rows(self, limit: int) -> int:
        """The rows a claim of up to ``limit`` tasks is likely to take: a queue asks for
        many while its tasks are fast, but as many as the last claim took is the better
        guess (an idle node's claim finds the one new task). A guess too low costs one
        long call on the loop, after which the guess is the rows it took."""
        return min(limit, self._claimed_last + 1)

    async def promote_due(self, now: float, limit: int) -> list[Transition]:
        return await self._call(True, self._logic.promote_due, now, limit)

    async def next_due_at(self) -> float | None:
        return await self._call(False, self._logic.next_due_at)

    async def claim(
        self,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        if await self._nothing_to_claim([ClaimRequest(queues, limit, owner, lease_until, exclude)]):
            return []
        tasks = await self._sized(
            self._claim_rows(limit),
            True,
            self._logic.claim,
            queues,
            limit,
            owner,
            lease_until,
            now,
            exclude,
        )
        self._claimed_last = len(tasks)
        return tasks

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Transition]:
        if not outcomes:
            return []
        return await self._sized(len(outcomes), True, self._logic.finish, outcomes, now)

    async def heartbeat(self, task_ids: Sequence[str], owner: str, lease_until: float) -> set[str]:
        if not task_ids:
            return set()
        return await self._sized(
            len(task_ids), True, self._logic.heartbeat, task_ids, owner, lease_until
        )

    async def release(self, task_ids: Sequence[str], owner: str, now: float) -> list[Transition]:
        if not task_ids:
            return []
        return await self._sized(len(task_ids), True, self._logic.release, task_ids, owner, now)

    async def recover_expired(self, now: float) -> list[Transition]:
        return await self._call(True, self._logic.recover_expired, now)

    async def cancel(self, task_id: str, now: float) -> list[Transition]:
        return await self._call(True, self._logic.cancel, task_id, now)

    async def workflow(self, workflow_id: str) -> WorkflowState | None:
        return await self._call(False, self._logic.workflow, workflow_id)

    async def signal(
        self, workflow_id: str, name: str, payload: object, now: float
    ) -> list[Transition]:
        return await self._call(True, self._logic.signal, workflow_id, name, payload, now)

    async def requeue(self, task_id: str, now: float) -> Transition:
        return await self._call(True, self._logic.requeue, task_id, now)

    async def set_progress(
        self, task_id: str, fraction: float, message: str | None, now: float
    ) -> None:
        await self._call_short(True, self._logic.set_progress, task_id, fraction, message, now)

    async def get(self, task_id: str) -> Task | None:
        return await self._call_short(False, self._logic.get, task_id)

    async def list_tasks(
        self,
        filter: TaskFilter,
        limit: int,
        cursor: str | None,
        include: frozenset[str] = TASK_DATA,
        max_bytes: int | None = None,
    ) -> Page:
        return await self._call(
            False, self._logic.list_tasks, filter, limit, cursor, include, max_bytes
        )

    async def events(self, task_id: str) -> list[TaskEvent]:
        return await self._call(False, self._logic.events, task_id)

    async def events_after(self, after: int, limit: int) -> list[Recorded]:
        return await self._call(False, self._logic.events_after, after, limit)

    async def last_event_id(self) -> int:
        return await self._call(False, self._logic.last_event_id)

    async def finished_since(self, since: float, limit: int) -> list[Finished]:
        return await self._call(False, self._logic.finished_since, since, limit)

    async def counts(self) -> Counts:
        return await self._call(False, self._logic.counts)

    async def prune(self, cutoffs: Mapping[TaskStatus, float], limit: int) -> int:
        if not cutoffs or limit <= 0:
            return 0
        return await self._call(True, self._logic.prune, cutoffs, limit)

    async def bulk(self, step: BulkStep, now: float) -> BulkDone:
        return await self._call(True, self._logic.bulk, step, now)

    async def purge(self, task_ids: Sequence[str]) -> int:
        if not task_ids:
            return 0
        return await self._call(True, self._logic.purge, task_ids)

    # -- schedules -----------------------------------------------------------------------
    async def save_schedule(self, schedule: Schedule) -> Schedule:
        return await self._call(True, self._logic.save_schedule, schedule)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._call(False, self._logic.get_schedule, schedule_id)

    async def list_schedules(self) -> list[Schedule]:
        return await self._call(False, self._logic.list_schedules)

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._call(True, self._logic.delete_schedule, schedule_id)

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float | None,
        next_run_at: float | None,
        fired_at: float | None,
    ) -> bool:
        return await self._call(
            True, self._logic.advance_schedule, schedule_id, expected, next_run_at, fired_at
        )

    # -- web UI login sessions -----------------------------------------------------------
    async def save_session(self, session: Session) -> None:
        await self._call(True, self._logic.save_session, session)

    async def get_session(self, key: str) -> Session | None:
        return await self._call(False, self._logic.get_session, key)

    async def touch_session(self, key: str, seen_at: float) -> bool:
        return await self._call(True, self._logic.touch_session, key, seen_at)

    async def delete_session(self, key: str) -> bool:
        return await self._call(True, self._logic.delete_session, key)

    async def prune_sessions(self, seen_before: float, now: float) -> int:
        return await self._call(True, self._logic.prune_sessions, seen_before, now)

    # -- the nodes registry ----------------------------------------------------------------
    async def save_node(self, node: NodeInfo) -> None:
        await self._call(True, self._logic.save_node, node)

    async def list_nodes(self) -> list[NodeInfo]:
        return await self._call(False, self._logic.list_nodes)

    async def delete_node(self, node_id: str) -> bool:
        return await self._call(True, self._logic.delete_node, node_id)

    async def prune_nodes(self, now: float) -> int:
        return await self._call(True, self._logic.prune_nodes, now)
