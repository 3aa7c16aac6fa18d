"""The store protocol written once for the SQL stores, over a DB-API cursor.

:class:`TaskLogic` selects rows, asks :mod:`trellis_actors.decisions` what each operation
does to them (the memory store asks the same functions) and writes tasks and events back,
inside the transaction its caller opened. The conformance suite holds all the stores to
the same behaviour.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple, TypeVar

from .. import decisions
from ..errors import TaskNotFound, ValidationError
from ..lifecycle import (
    BACKLOG,
    Recorded,
    Task,
    TaskError,
    TaskEvent,
    TaskStatus,
    Transition,
    evolve,
    requeued,
    transition,
)
from ..rules import TASK_DATA
from ._sql import Cursor
from ._sqlnodes import NodeSteps
from ._sqlschedules import ScheduleSteps
from ._sqlsessions import SessionSteps
from ._sqlworkflows import WorkflowSteps
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
    arrive,
    fitting,
)

#: The columns of a running task that change without a transition (``lease_states``).
_NEWER_FIRST = re.compile(r"\bid < ")
_BY_ID_DESC = re.compile(r"\bORDER BY id DESC\b")


@functools.cache
def oldest_first(listing: str) -> str:
    """A listing query (newest first: ``id < :before ... ORDER BY id DESC``) turned to page
    oldest first, with the cursor a bound from below: the same indexes, read forwards."""
    turned, paged = _NEWER_FIRST.subn("id > ", listing)
    turned, ordered = _BY_ID_DESC.subn("ORDER BY id ASC", turned)
    if (paged, ordered) != (1, 1):
        raise AssertionError(f"a listing query pages by id once: {listing!r}")
    return turned


_WHILE_RUNNING = ("progress", "progress_message", "updated_at", "lease_expires_at")

T = TypeVar("T")


class Step(NamedTuple):
    """One statement a :data:`Steps` generator needs the answer of before it goes on."""

    query: str
    params: dict[str, Any]
    rows: bool = False  # send back its rows (mappings), else its row count


#: Logic that asks the database as it goes, whatever the driver: each ``yield`` is a
#: :class:`Step` to execute, the value sent back its answer; the return value, the result.
#: :func:`run_steps` runs one on a DB-API cursor; an async driver is as short.
Steps = Generator[Step, Any, T]


class Arrivals(NamedTuple):
    """What :meth:`TaskLogic.arrivals` leaves its caller to write."""

    submitted: list[Submitted]  # one per new task, in order
    moves: list[Transition]  # the created tasks' moves: their events, in order
    plain: list[dict[str, Any]]  # rows of created tasks with no idempotency key, not written


def best_first(tasks: list[Task], limit: int) -> list[Task]:
    """The first ``limit`` of ``tasks`` (claimed queue by queue) in claim order: highest
    priority first, FIFO within one."""
    tasks.sort(key=lambda task: (-task.priority, task.queued_at or 0.0, task.id))
    return tasks[:limit]


def run_steps(cur: Cursor, steps: Steps[T]) -> T:
    """Run ``steps`` on ``cur``, answering each step; returns what they return."""
    answer: Any = None
    try:
        while True:
            step = steps.send(answer)
            cur.execute(step.query, step.params)
            answer = cur.fetchall() if step.rows else cur.rowcount
    except StopIteration as stop:
        result: T = stop.value
        return result


class TaskLogic(SessionSteps, NodeSteps, ScheduleSteps, WorkflowSteps):
    """The store protocol as synchronous steps inside the caller's transaction.

    A dialect subclass sets :attr:`dialect` and :attr:`after_every_id`, and may override
    the dialect hooks below: how ids are checked and passed, how claimable rows are found,
    how batches are written and deleted, and what happens once moves are written.
    """

    dialect: str
    after_every_id: str  # sorts after every task id: the cursor of the first page
    before_every_id: str  # sorts before every task id: where a bulk operation starts

    def __init__(self) -> None:
        super().__init__()
        # Tasks held under leases this store wrote (claimed or running), as written:
        # finishing one then needs only the columns that change while a task runs read
        # back, not the whole row parsed again. forget() empties it after a rollback.
        self._leased: dict[str, Task] = {}
        self.limits: dict[str, decisions.TypeLimit] = {}  # per task type, every node's
        self.held_until: float | None = None  # when the last claim's rate holds end

    def forget(self) -> None:
        """The transaction rolled back: what it wrote may not be so."""
        self._leased.clear()

    # -- dialect hooks -------------------------------------------------------------------
    def key(self, task_id: str) -> str | None:
        """``task_id`` if it can name a stored task, else None (it then matches nothing)."""
        return task_id

    def ids_param(self, ids: list[str]) -> Any:
        return ids

    def claimable(
        self, cur: Cursor, queues: Sequence[str] | None, limit: int, exclude: Sequence[str]
    ) -> list[Task]:
        """The next ``limit`` queued tasks nobody holds, of no type in ``exclude``: highest
        priority first, FIFO within one."""
        skip = self.ids_param(list(exclude))
        if queues is None:
            return self.select(cur, "claim_any", limit=limit, exclude=skip)
        found = [
            task
            for queue in dict.fromkeys(queues)
            for task in self.select(cur, "claim_queue", queue=queue, limit=limit, exclude=skip)
        ]
        return best_first(found, limit)

    def any_claimable(self, cur: Cursor, claims: Sequence[ClaimRequest]) -> bool:
        """Whether any of ``claims`` would find a task (type limits aside)."""
        return any(
            claim.limit > 0 and self.claimable(cur, claim.queues, 1, claim.exclude)
            for claim in claims
        )

    def lock_type(self, cur: Cursor, name: str) -> None:
        """Serialize claims of a limited type (PostgreSQL: across nodes) to the commit."""

    def oldest(self, value: Any) -> tuple[float, ...]:
        """The ``oldest`` column of ``type_load`` as floats."""
        return tuple(float(at) for at in value)

    def loads(self, cur: Cursor, now: float) -> dict[str, decisions.TypeLoad]:
        """What each limited type holds at ``now``, its claims serialized first (in name
        order, so two claimers never wait on each other crosswise)."""
        for name in sorted(self.limits):
            self.lock_type(cur, name)
        loads: dict[str, decisions.TypeLoad] = {}
        for name, limit in sorted(self.limits.items()):
            params = {"type": name, "since": now - limit.per, "rate": limit.rate or 0}
            if limit.rate is not None:
                cur.execute(self.q["prune_starts"], params)
            cur.execute(self.q["type_load"], params)
            row = cur.fetchone()
            loads[name] = decisions.TypeLoad(
                row["held"], row["unstarted"], row["recent"], self.oldest(row["oldest"])
            )
        return loads

    def delete_tasks(self, cur: Cursor, ids: list[str]) -> int:
        """Delete the tasks of ``ids`` (locked by this transaction), with their events
        (and a workflow's history and signals)."""
        params = {"ids": self.ids_param(ids)}
        cur.execute(self.q["delete_events"], params)
        cur.execute(self.q["delete_tasks"], params)
        deleted = cur.rowcount
        self.forget_workflows(cur, ids)
        return deleted

    def purge_dead(self, cur: Cursor, ids: list[str]) -> int:
        """Delete the tasks of ``ids`` that are dead, with their events (and a
        workflow's history and signals)."""
        params = {"ids": self.ids_param(ids)}
        cur.execute(self.q["purge_events"], params)
        cur.execute(self.q["purge_tasks"], params)
        deleted = cur.rowcount
        self.forget_workflows(cur, ids)
        return deleted

    def published(self, cur: Cursor, moves: Sequence[Transition], freed: bool = False) -> None:
        """Called after ``moves`` are written, or claimed tasks were given back unstarted
        (``freed``: claimable again). PostgreSQL sends NOTIFY from here."""

    # Batches are written in each dialect's cheapest way (rows are ``row``, ``change_row``
    # and ``event_row`` dictionaries).
    def insert_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        """Insert new tasks that carry no idempotency key (so cannot conflict)."""
        raise NotImplementedError

    def update_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        """Write the changing columns of tasks (one row per task)."""
        raise NotImplementedError

    def insert_events(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        """Append events; their order is their order in history."""
        raise NotImplementedError

    # -- rows ----------------------------------------------------------------------------
    def task(self, row: Any) -> Task:
        error = self._json(row["error"])
        return Task(
            id=str(row["id"]),
            type=row["type"],
            queue=row["queue"],
            payload=self._json(row["payload"]),
            status=TaskStatus(row["status"]),
            priority=row["priority"],
            attempt=row["attempt"],
            max_attempts=row["max_attempts"],
            run_at=row["run_at"],
            timeout=row["timeout"],
            idempotency_key=row["idempotency_key"],
            dead_letter=bool(row["dead_letter"]),
            created_at=row["created_at"],
            queued_at=row["queued_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            updated_at=row["updated_at"],
            result=self._json(row["result"]),
            error=None if error is None else TaskError(**error),
            progress=row["progress"],
            progress_message=row["progress_message"],
            lease_owner=row["lease_owner"],
            lease_expires_at=row["lease_expires_at"],
            schedule_id=row["schedule_id"],
            trace_context=self._json(row["trace_context"]),
            node=row["node"],
            worker=row["worker"],
            parent_id=None if row["parent_id"] is None else str(row["parent_id"]),
        )

    @staticmethod
    def row(task: Task) -> dict[str, Any]:
        return {
            "id": task.id,
            "type": task.type,
            "queue": task.queue,
            "payload": json.dumps(task.payload),
            "status": task.status.value,
            "priority": task.priority,
            "attempt": task.attempt,
            "max_attempts": task.max_attempts,
            "run_at": task.run_at,
            "timeout": task.timeout,
            "idempotency_key": task.idempotency_key,
            "dead_letter": task.dead_letter,
            "created_at": task.created_at,
            "queued_at": task.queued_at,
            "started_at": task.started_at,
            "finished_at": task.finished_at,
            "updated_at": task.updated_at,
            "result": None if task.result is None else json.dumps(task.result),
            "error": None if task.error is None else json.dumps(task.error.to_dict()),
            "progress": task.progress,
            "progress_message": task.progress_message,
            "lease_owner": task.lease_owner,
            "lease_expires_at": task.lease_expires_at,
            "schedule_id": task.schedule_id,
            "trace_context": None if task.trace_context is None else json.dumps(task.trace_context),
            "parent_id": task.parent_id,
        }

    @staticmethod
    def change_row(task: Task) -> dict[str, Any]:
        """What a transition may change (the columns ``update_tasks`` writes), by name:
        no payload to encode again on every move."""
        return {
            "id": task.id,
            "status": task.status.value,
            "attempt": task.attempt,
            "run_at": task.run_at,
            "queued_at": task.queued_at,
            "started_at": task.started_at,
            "finished_at": task.finished_at,
            "updated_at": task.updated_at,
            "result": None if task.result is None else json.dumps(task.result),
            "error": None if task.error is None else json.dumps(task.error.to_dict()),
            "progress": task.progress,
            "progress_message": task.progress_message,
            "lease_owner": task.lease_owner,
            "lease_expires_at": task.lease_expires_at,
            "node": task.node,
            "worker": task.worker,
        }

    @staticmethod
    def event_row(event: TaskEvent) -> dict[str, Any]:
        return {
            "task_id": event.task_id,
            "from_status": None if event.from_status is None else event.from_status.value,
            "to_status": event.to_status.value,
            "at": event.at,
            "attempt": event.attempt,
            "detail": event.detail,
            "node": event.node,
            "worker": event.worker,
        }

    def select(self, cur: Cursor, query: str, **params: Any) -> list[Task]:
        cur.execute(self.q[query], params)
        return [self.task(row) for row in cur.fetchall()]

    def locked(self, cur: Cursor, task_ids: Iterable[str]) -> dict[str, Task]:
        ids = [key for key in dict.fromkeys(map(self.key, task_ids)) if key is not None]
        if not ids:
            return {}
        return {task.id: task for task in self.select(cur, "lock_tasks", ids=self.ids_param(ids))}

    def leased(self, cur: Cursor, task_ids: Iterable[str]) -> dict[str, Task]:
        """The held (claimed or running) ones of ``task_ids``, locked, as :meth:`locked`
        reads them; but a task whose lease we wrote and whose row still shows that lease
        comes from :attr:`_leased`, updated with the columns that change while it runs."""
        ids = [key for key in dict.fromkeys(map(self.key, task_ids)) if key is not None]
        if not ids:
            return {}
        cur.execute(self.q["lease_states"], {"ids": self.ids_param(ids)})
        found: dict[str, Task] = {}
        unknown: list[str] = []
        for row in cur.fetchall():
            task_id = str(row["id"])
            task = self._leased.get(task_id)
            if (
                task is not None
                and row["lease_owner"] == task.lease_owner
                and row["attempt"] == task.attempt
                and row["status"] == task.status.value
            ):
                moving = {name: row[name] for name in _WHILE_RUNNING}
                if any(getattr(task, name) != value for name, value in moving.items()):
                    task = evolve(task, moving)
                found[task_id] = task
            else:
                unknown.append(task_id)
        for task_id in ids:
            if task_id not in found:  # no longer held under the lease we wrote
                self._leased.pop(task_id, None)
        if unknown:
            found.update(self.locked(cur, unknown))
        return found

    def lock_one(self, cur: Cursor, task_id: str) -> Task:
        key = self.key(task_id)
        found = [] if key is None else self.select(cur, "lock_task", id=key)
        if not found:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return found[0]

    def writing(self, cur: Cursor, rows: int) -> AbstractContextManager[object]:
        """Around a call's closing writes (results unread): PostgreSQL pipelines a few."""
        return nullcontext()

    def save(self, cur: Cursor, moves: list[Transition]) -> list[Transition]:
        """Write each moved task's final state and every event, in order."""
        if moves:
            self.write(cur, {move.task.id: move.task for move in moves}, moves)
        return moves

    def write(self, cur: Cursor, tasks: dict[str, Task], moves: Sequence[Transition]) -> None:
        """Write ``tasks`` (each as it now stands) and the events of ``moves``, in order."""
        leased = self._leased
        for task_id, task in tasks.items():
            if task.lease_owner is not None:
                leased[task_id] = task
            else:
                leased.pop(task_id, None)
        freed = not moves and any(
            task.status is TaskStatus.QUEUED and task.lease_owner is None for task in tasks.values()
        )
        with self.writing(cur, len(tasks) + len(moves)):
            self.update_tasks(cur, [self.change_row(task) for task in tasks.values()])
            if moves:
                self.insert_events(cur, [self.event_row(move.event) for move in moves])
                if self.limits:
                    self.record_starts(cur, moves)
            if moves or freed:
                self.published(cur, moves, freed)

    def record_starts(self, cur: Cursor, moves: Sequence[Transition]) -> None:
        """Log the starts of rate-limited types: what their next claims count."""
        starts = [
            {"type": move.task.type, "at": move.event.at}
            for move in moves
            if move.task.status is TaskStatus.RUNNING
            and move.event.from_status is TaskStatus.QUEUED
            and (limit := self.limits.get(move.task.type)) is not None
            and limit.rate is not None
        ]
        if starts:
            cur.executemany(self.q["insert_start"], starts)

    def decide(
        self, cur: Cursor, changes: Iterable[decisions.Change | None], now: float | None = None
    ) -> list[Transition]:
        """Write what the decisions changed, and what their moves lead to (a workflow's
        steps, at ``now``: see :meth:`follow`); returns every move."""
        tasks: dict[str, Task] = {}
        moves: list[Transition] = []
        for change in changes:
            if change is not None:
                tasks[change.task.id] = change.task
                moves.extend(change.moves)
        if tasks:
            self.write(cur, tasks, moves)
            if now is not None and any(_leads_on(move) for move in moves):
                moves += self.follow(cur, moves, now)
        return moves

    # -- the protocol, one transaction per call ------------------------------------------
    def arrivals(self, tasks: Sequence[NewTask], now: float) -> Steps[Arrivals]:
        """New tasks' first moves and rows, for a caller to write; what is not known before
        the database answers (an idempotency key already stored) is asked as it goes: each
        keyed task's insert is a :class:`Step` (sent back: the row count), then, on a
        conflict, the stored task is looked up (sent back: its rows). Written once for
        the stores and for ``trellis_actors.postgres`` and ``trellis_actors.sqlite``,
        which run the same steps on a caller's (sync or async) connection."""
        submitted: list[Submitted] = []
        moves: list[Transition] = []
        plain: list[dict[str, Any]] = []  # no idempotency key, so no conflict: one batch
        for new in tasks:
            steps = arrive(new, now)
            task = steps[-1].task
            if new.idempotency_key is None:
                plain.append(self.row(task))
            else:
                inserted = yield Step(self.q["insert_task"], self.row(task))
                if inserted == 0:
                    found = yield Step(self.q["task_by_key"], {"key": new.idempotency_key}, True)
                    submitted.append(Submitted(self.task(found[0]), created=False))
                    continue
            moves.extend(steps)
            submitted.append(Submitted(task, created=True))
        return Arrivals(submitted, moves, plain)

    def enqueue(
        self, cur: Cursor, tasks: Sequence[NewTask], now: float
    ) -> tuple[list[Submitted], list[Transition]]:
        submitted, moves, plain = run_steps(cur, self.arrivals(tasks, now))
        with self.writing(cur, len(moves)):
            if plain:
                self.insert_tasks(cur, plain)
            if moves:
                self.insert_events(cur, [self.event_row(move.event) for move in moves])
                self.published(cur, moves)
        return submitted, moves

    def apply(self, cur: Cursor, work: Work, now: float) -> WorkDone:
        submitted, arrived = self.enqueue(cur, work.tasks, now) if work.tasks else ([], [])
        finished = self.finish(cur, work.outcomes, now) if work.outcomes else []
        claimed = [
            self.claim(cur, c.queues, c.limit, c.owner, c.lease_until, now, c.exclude)
            for c in work.claims
        ]
        return WorkDone(submitted, arrived, finished, claimed)

    def promote_due(self, cur: Cursor, now: float, limit: int) -> list[Transition]:
        if limit <= 0:
            return []
        due = self.select(cur, "due_tasks", now=now, limit=limit)
        return self.save(cur, [transition(task, TaskStatus.QUEUED, at=now) for task in due])

    def next_due_at(self, cur: Cursor) -> float | None:
        cur.execute(self.q["next_due_at"], {})
        row = cur.fetchone()
        return None if row is None else row["run_at"]

    def claim(
        self,
        cur: Cursor,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        if limit <= 0 or (queues is not None and not queues):
            return []
        if not self.limits:
            changes = [
                decisions.claim(task, owner, lease_until)
                for task in self.claimable(cur, queues, limit, exclude)
            ]
            self.decide(cur, changes)
            return [change.task for change in changes if change is not None]
        loads = self.loads(cur, now)
        allowed = decisions.allowance(self.limits, loads, now).counts
        skip = [*exclude, *(name for name, n in allowed.items() if n <= 0)]
        claimed: list[Task] = []
        while len(claimed) < limit:
            wanted = limit - len(claimed)
            found = self.claimable(cur, queues, wanted, skip)
            full: set[str] = set()  # types that reached their allowance in this claim
            changes = []
            for task in found:
                if task.type in allowed:
                    if allowed[task.type] <= 0:
                        full.add(task.type)
                        continue
                    allowed[task.type] -= 1
                changes.append(decisions.claim(task, owner, lease_until))
            self.decide(cur, changes)
            claimed += [change.task for change in changes if change is not None]
            if not full or len(found) < wanted:
                break
            skip += sorted(full)  # look again past the tasks of types now at their limit
        taken = Counter(task.type for task in claimed)
        self.held_until = decisions.held_until(self.limits, loads, dict(taken), now)
        return claimed

    def finish(self, cur: Cursor, outcomes: Sequence[Outcome], now: float) -> list[Transition]:
        tasks = self.leased(cur, (outcome.task_id for outcome in outcomes))
        changes: list[decisions.Change | None] = []
        flows: list[tuple[Task, Any]] = []
        for outcome in outcomes:
            task = tasks.get(outcome.task_id)
            change = None if task is None else decisions.settle(task, outcome, now)
            if change is not None:
                tasks[change.task.id] = change.task
                changes.append(change)
                if outcome.workflow is not None:
                    flows.append((change.task, outcome.workflow))
        moves = self.decide(cur, changes, now)
        for workflow, continuation in flows:
            moves += self.continue_workflow(cur, workflow, continuation, now)
        return moves

    def heartbeat(
        self, cur: Cursor, task_ids: Sequence[str], owner: str, lease_until: float
    ) -> set[str]:
        ids = [key for key in dict.fromkeys(map(self.key, task_ids)) if key is not None]
        if not ids:
            return set()
        params = {"ids": self.ids_param(ids), "owner": owner, "lease_until": lease_until}
        cur.execute(self.q["heartbeat"], params)
        held = {str(row["id"]) for row in cur.fetchall()}
        for task_id in ids:
            if task_id not in held:  # lost: another node recovered or cancelled it
                self._leased.pop(task_id, None)
            elif (task := self._leased.get(task_id)) is not None:
                self._leased[task_id] = evolve(task, {"lease_expires_at": lease_until})
        return held

    def release(
        self, cur: Cursor, task_ids: Sequence[str], owner: str, now: float
    ) -> list[Transition]:
        tasks = self.locked(cur, task_ids)
        changes = []
        for task_id in dict.fromkeys(task_ids):
            task = tasks.get(task_id)
            if task is not None:
                changes.append(decisions.release(task, owner, now))
        return self.decide(cur, changes)

    def recover_expired(self, cur: Cursor, now: float) -> list[Transition]:
        return self.decide(
            cur,
            [decisions.expire(task, now) for task in self.select(cur, "expired_leases", now=now)],
            now,
        )

    def cancel(self, cur: Cursor, task_id: str, now: float) -> list[Transition]:
        task = self.lock_one(cur, task_id)
        move = transition(task, TaskStatus.CANCELLED, at=now, detail="cancelled by request")
        moves = self.save(cur, [move])
        return moves + self.follow(cur, moves, now)

    def requeue(self, cur: Cursor, task_id: str, now: float) -> Transition:
        return self.save(cur, [requeued(self.lock_one(cur, task_id), at=now)])[0]

    def pause_queue(self, cur: Cursor, name: str, paused: bool, now: float) -> decisions.QueueState:
        state = decisions.paused_change(None, name, paused, now)
        params = {"name": name, "paused": paused, "paused_at": state.paused_at, "now": now}
        cur.execute(self.q["set_paused"], params)
        if not paused:
            self.published(cur, [], freed=True)  # other nodes claim what waited
        return next(q for q in self.queue_states(cur) if q.name == name)

    def queue_states(self, cur: Cursor) -> list[decisions.QueueState]:
        counts = self.counts(cur).by_queue
        cur.execute(self.q["queue_rows"], {})
        rows = {row["name"]: row for row in cur.fetchall()}
        return [
            decisions.QueueState(
                name,
                bool(rows[name]["paused"]) if name in rows else False,
                rows[name]["paused_at"] if name in rows else None,
                counts.get(name, {}),
            )
            for name in sorted(set(counts) | set(rows))
        ]

    def ping(self, cur: Cursor) -> None:
        cur.execute(self.q["ping"])

    def set_progress(
        self, cur: Cursor, task_id: str, fraction: float, message: str | None, now: float
    ) -> None:
        key = self.key(task_id)
        if key is not None:
            params = {"id": key, "fraction": fraction, "message": message, "now": now}
            cur.execute(self.q["set_progress"], params)

    def get(self, cur: Cursor, task_id: str) -> Task | None:
        key = self.key(task_id)
        found = [] if key is None else self.select(cur, "get_task", id=key)
        return found[0] if found else None

    def list_tasks(
        self,
        cur: Cursor,
        filter: TaskFilter,
        limit: int,
        cursor: str | None,
        include: frozenset[str] = TASK_DATA,
        max_bytes: int | None = None,
    ) -> Page:
        """Summaries first (no payload or result read, but their size when included);
        then the included data of the tasks that fit in ``max_bytes``."""
        if cursor is not None and self.key(cursor) is None:
            raise ValidationError(
                f"cursor {cursor!r} is not a task id; pass back a page's next_cursor",
                field="cursor",
            )
        query = (
            "list_by_key"
            if filter.idempotency_key is not None
            else "list_by_status"
            if filter.status is not None
            else "list_by_queue"
            if filter.queue is not None
            else "list_by_type"
            if filter.type is not None
            else "list_any"
        )
        wanted = {"payload": "payload" in include, "result": "result" in include}
        low, high = filter.id_range()
        first = self.before_every_id if filter.oldest_first else self.after_every_id
        cur.execute(
            oldest_first(self.q[query]) if filter.oldest_first else self.q[query],
            {
                "status": None if filter.status is None else filter.status.value,
                "queue": filter.queue,
                "type": filter.type,
                "idempotency_key": filter.idempotency_key,
                "schedule_id": filter.schedule_id,
                "created_after": filter.created_after,
                "created_before": filter.created_before,
                "id_low": low,
                "id_high": high,
                "before": first if cursor is None else cursor,
                "limit": max(limit, 0) + 1,
                **wanted,
            },
        )
        rows = cur.fetchall()
        if limit <= 0:
            return Page([], None)
        items = [self.task(row) for row in rows[:limit]]
        if include:
            fits = fitting([row["data_size"] for row in rows[:limit]], max_bytes)
            items = self.with_data(cur, items[:fits], wanted)
        more = len(rows) > len(items)
        return Page(items, items[-1].id if more else None)

    def with_data(self, cur: Cursor, tasks: list[Task], wanted: dict[str, bool]) -> list[Task]:
        """``tasks`` with the payloads and results ``wanted``."""
        if not tasks:
            return tasks
        cur.execute(self.q["task_data"], {"ids": self.ids_param([t.id for t in tasks]), **wanted})
        data = {str(row["id"]): row for row in cur.fetchall()}
        filled = []
        for task in tasks:
            row = data.get(task.id)  # deleted since (purged): shown without its data
            if row is not None:
                payload, result = self._json(row["payload"]), self._json(row["result"])
                task = dataclasses.replace(task, payload=payload, result=result)
            filled.append(task)
        return filled

    def events_after(self, cur: Cursor, after: int, limit: int) -> list[Recorded]:
        cur.execute(self.q["events_after"], {"after": after, "limit": limit})
        return [self.recorded(row) for row in cur.fetchall()]

    def last_event_id(self, cur: Cursor) -> int:
        cur.execute(self.q["last_event_id"], {})
        return int(cur.fetchone()["last"])

    def recorded(self, row: Any) -> Recorded:
        """A row of ``events_after``: the event's columns (some renamed) and its task's."""
        event = _event(row, row["event_attempt"], row["event_node"], row["event_worker"])
        return Recorded(int(row["event_id"]), self.task(row), event)

    def events(self, cur: Cursor, task_id: str) -> list[TaskEvent]:
        key = self.key(task_id)
        if key is None:
            return []
        cur.execute(self.q["events"], {"id": key})
        return [_event(row, row["attempt"], row["node"], row["worker"]) for row in cur.fetchall()]

    def finished_since(self, cur: Cursor, since: float, limit: int) -> list[Finished]:
        rows: list[Finished] = []
        for status in ("completed", "dead"):  # one ordered index range each: no sort
            cur.execute(
                self.q["finished_since"], {"status": status, "since": since, "limit": limit}
            )
            rows += (
                Finished(row["type"], status == "completed", row["finished_at"], row["started_at"])
                for row in cur.fetchall()
            )
        rows.sort(key=lambda row: row.finished_at, reverse=True)
        return rows[:limit]

    def counts(self, cur: Cursor) -> Counts:
        cur.execute(self.q["counts"], {})
        by_queue: dict[str, dict[str, int]] = {}
        for row in cur.fetchall():
            by_queue.setdefault(row["queue"], {})[row["status"]] = row["n"]
        return Counts(by_queue)

    def prune(self, cur: Cursor, cutoffs: Mapping[TaskStatus, float], limit: int) -> int:
        deleted = 0
        for status, before in sorted(cutoffs.items()):
            if deleted >= limit:
                break
            params = {"status": status.value, "before": before, "limit": limit - deleted}
            cur.execute(self.q["prunable"], params)
            ids = [str(row["id"]) for row in cur.fetchall()]
            if ids:
                deleted += self.delete_tasks(cur, ids)
        return deleted

    def bulk(self, cur: Cursor, step: BulkStep, now: float) -> BulkDone:
        selection = step.selection
        selected = self.select(
            cur,
            "bulk_select",
            statuses=self.ids_param(sorted(status.value for status in selection.statuses)),
            type=selection.type,
            queue=selection.queue,
            created_after=selection.created_after,
            created_before=selection.created_before,
            after=self.before_every_id if step.after is None else step.after,
            until=step.until,
            limit=step.limit,
        )
        after = selected[-1].id if len(selected) == step.limit else None
        if step.dry_run or not selected:
            return BulkDone(len(selected), [], after)
        if step.action is decisions.Bulk.PURGE:
            return BulkDone(self.delete_tasks(cur, [task.id for task in selected]), [], after)
        changes = [decisions.bulk(step.action, task, now) for task in selected]
        moves = self.decide(cur, changes, now)
        held = tuple(
            task.id
            for task, change in zip(selected, changes, strict=True)
            if change is not None and task.lease_owner is not None
        )
        return BulkDone(sum(change is not None for change in changes), moves, after, held)

    def purge(self, cur: Cursor, task_ids: Sequence[str]) -> int:
        ids = [key for key in dict.fromkeys(map(self.key, task_ids)) if key is not None]
        return self.purge_dead(cur, ids) if ids else 0


def _leads_on(move: Transition) -> bool:
    """Whether a move may lead to more: a step ended, or a task (a workflow?) cancelled."""
    return move.event.to_status is TaskStatus.CANCELLED or decisions.step_ended(move)


def wakes_workers(moves: Sequence[Transition]) -> bool:
    """True when a move made work ready now or later (queued, pending or retrying)."""
    return any(move.task.status in BACKLOG for move in moves)


def _event(row: Any, attempt: int, node: str | None, worker: str | None) -> TaskEvent:
    """An event row as a TaskEvent (``attempt``, ``node`` and ``worker`` are passed in:
    a row joined with its task has them renamed)."""
    source = row["from_status"]
    return TaskEvent(
        task_id=str(row["task_id"]),
        from_status=None if source is None else TaskStatus(source),
        to_status=TaskStatus(row["to_status"]),
        at=row["at"],
        attempt=attempt,
        detail=row["detail"],
        node=node,
        worker=worker,
    )
