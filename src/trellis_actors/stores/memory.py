"""``memory://``: the fastest store, for tests and ephemeral use. Nothing survives the process."""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence

import pydantic_core

from .. import decisions, workflows
from ..errors import TaskNotFound
from ..lifecycle import (
    DELAYED,
    Recorded,
    Task,
    TaskEvent,
    TaskStatus,
    Transition,
    evolve,
    requeued,
    transition,
)
from ..rules import TASK_DATA
from .base import (
    BulkDone,
    BulkStep,
    Counts,
    Finished,
    NewTask,
    Outcome,
    Page,
    SingleNode,
    Submitted,
    TaskFilter,
    Work,
    WorkDone,
    apply_in_turn,
    arrive,
    fitting,
)
from .memory_nodes import MemoryNodes
from .memory_schedules import MemorySchedules
from .memory_sessions import MemorySessions

_ReadyEntry = tuple[int, float, str]  # (-priority, queued_at, id)
# An event as kept here: (from, to, at, attempt, detail, node, worker), statuses as plain
# strings; a
# task's events are a tuple of them. Tuples of strings and numbers are ones the garbage
# collector stops tracking, and this store keeps every event it ever saw: kept as lists of
# TaskEvents, they made each full collection several times slower.
_StoredEvent = tuple[str | None, str, float, int, str | None, str | None, str | None]


class MemoryStore(SingleNode, MemorySessions, MemoryNodes, MemorySchedules):
    """Tasks in dictionaries, ready work in one heap per queue."""

    def __init__(self, url: str = "memory://") -> None:
        super().__init__()
        self.url = url
        self._tasks: dict[str, Task] = {}
        self._events: dict[str, tuple[_StoredEvent, ...]] = {}
        self._order: list[str] = []  # ids in creation order, which is id order
        # Every event in the order recorded, as (task id, index in the task's events); the
        # event with id ``n`` is ``_log[n - _log_base - 1]``. Deleted tasks' entries are
        # trimmed from the front (see _delete) and skipped elsewhere.
        self._log: list[tuple[str, int]] = []
        self._log_base = 0
        self._idempotency: dict[str, str] = {}
        self._ready: dict[str, list[_ReadyEntry]] = {}
        self._delayed: list[tuple[float, str]] = []
        self._counts: Counter[tuple[str, TaskStatus]] = Counter()
        self._queues: dict[str, decisions.QueueState] = {}  # paused or resumed, by name
        self._limits: dict[str, decisions.TypeLimit] = {}
        self._starts: dict[str, list[float]] = {}  # recent starts of rate-limited types
        self.held_until: float | None = None
        # Workflows: history entries by seq, signals in the order sent, step ids.
        self._history: dict[str, dict[int, workflows.HistoryEntry]] = {}
        self._signals: dict[str, list[workflows.SignalRecord]] = {}
        self._steps: dict[str, list[str]] = {}
        self._signal_ids = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    # -- book-keeping --------------------------------------------------------------------
    def _record(self, move: Transition) -> Transition:
        task, event = move
        self._note(event)
        self._place(task, event.from_status)
        return move

    def _note(self, event: TaskEvent) -> None:
        source = event.from_status
        stored = (
            None if source is None else source.value,
            event.to_status.value,
            event.at,
            event.attempt,
            event.detail,
            event.node,
            event.worker,
        )
        kept = self._events[event.task_id]
        self._log.append((event.task_id, len(kept)))
        self._events[event.task_id] = (*kept, stored)

    def _place(self, task: Task, previous: TaskStatus | None) -> None:
        """Keep the task, counted under its status and, when it waits, in its heap."""
        status = task.status
        if previous is not None:
            self._counts[(task.queue, previous)] -= 1
        self._counts[(task.queue, status)] += 1
        self._tasks[task.id] = task
        if status is TaskStatus.QUEUED:
            entry = (-task.priority, task.queued_at or 0.0, task.id)
            heap = self._ready.get(task.queue)
            if heap is None:
                heap = self._ready[task.queue] = []
            heapq.heappush(heap, entry)
        elif (
            status is TaskStatus.PENDING
            or status is TaskStatus.RETRYING
            or (status is TaskStatus.WAITING and task.run_at < decisions.NEVER)
        ):
            heapq.heappush(self._delayed, (task.run_at, task.id))

    def _task(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return task

    # -- the protocol --------------------------------------------------------------------
    async def enqueue(
        self, tasks: Sequence[NewTask], now: float
    ) -> tuple[list[Submitted], list[Transition]]:
        submitted: list[Submitted] = []
        moves: list[Transition] = []
        for new in tasks:
            submitted.append(self._arrive(new, now, moves))
        return submitted, moves

    def _arrive(self, new: NewTask, now: float, moves: list[Transition]) -> Submitted:
        key = new.idempotency_key
        if key is not None and key in self._idempotency:
            return Submitted(self._tasks[self._idempotency[key]], created=False)
        steps = arrive(new, now)
        task = steps[-1].task  # as it stands after arriving: pending or queued
        if key is not None:
            self._idempotency[key] = task.id
        self._events[task.id] = ()
        self._order.append(task.id)
        for step in steps:
            self._note(step.event)
        self._place(task, None)
        if task.parent_id is not None:
            self._steps.setdefault(task.parent_id, []).append(task.id)
        moves += steps
        return Submitted(task, created=True)

    async def apply(self, work: Work, now: float) -> WorkDone:
        return await apply_in_turn(self, work, now)

    async def promote_due(self, now: float, limit: int) -> list[Transition]:
        moves: list[Transition] = []
        while self._delayed and self._delayed[0][0] <= now and len(moves) < limit:
            run_at, task_id = heapq.heappop(self._delayed)
            task = self._tasks.get(task_id)
            if task is None or task.run_at != run_at:
                continue
            if task.status in DELAYED:
                moves.append(self._record(transition(task, TaskStatus.QUEUED, at=now)))
        return moves

    async def next_due_at(self) -> float | None:
        while self._delayed:
            run_at, task_id = self._delayed[0]
            task = self._tasks.get(task_id)
            if task is not None and task.run_at == run_at and task.status in DELAYED:
                return run_at
            heapq.heappop(self._delayed)
        return None

    async def claim(
        self,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        paused = {name for name, state in self._queues.items() if state.paused}
        heaps = [
            self._ready[q]
            for q in (self._ready if queues is None else queues)
            if q in self._ready and q not in paused
        ]
        allowed: dict[str, int] = {}
        if self._limits:
            loads = self._loads(now)
            allowed = decisions.allowance(self._limits, loads, now).counts
            exclude = [*exclude, *(name for name, n in allowed.items() if n <= 0)]
        skipped: list[tuple[list[_ReadyEntry], _ReadyEntry]] = []  # excluded types
        claimed: list[Task] = []
        while len(claimed) < limit:
            best: list[_ReadyEntry] | None = None
            for heap in heaps:
                if heap and (best is None or heap[0] < best[0]):
                    best = heap
            if best is None:
                break
            entry = heapq.heappop(best)
            task = self._tasks.get(entry[2])
            if task is None or not decisions.claimable(task):
                continue  # stale entry: cancelled, claimed or pruned since it was queued
            if (exclude and task.type in exclude) or allowed.get(task.type, 1) <= 0:
                skipped.append((best, entry))
                continue
            if task.type in allowed:
                allowed[task.type] -= 1
            change = decisions.claim(task, owner, lease_until)
            assert change is not None
            self._tasks[task.id] = change.task
            claimed.append(change.task)
        for heap, entry in skipped:
            heapq.heappush(heap, entry)
        if self._limits:
            taken = Counter(task.type for task in claimed)
            self.held_until = decisions.held_until(self._limits, loads, dict(taken), now)
        return claimed

    def _loads(self, now: float) -> dict[str, decisions.TypeLoad]:
        """What each limited type holds now (a scan: this store is for tests and demos)."""
        held: Counter[str] = Counter()
        unstarted: Counter[str] = Counter()
        for task in self._tasks.values():
            if task.type in self._limits and task.lease_owner is not None:
                if task.status is TaskStatus.RUNNING:
                    held[task.type] += 1
                elif task.status is TaskStatus.QUEUED:
                    held[task.type] += 1
                    unstarted[task.type] += 1
        loads = {}
        for name, limit in self._limits.items():
            starts = self._starts.get(name, [])
            starts[:] = [at for at in starts if at > now - limit.per]
            needed = max(1, len(starts) + unstarted[name] - (limit.rate or 0) + 1)
            oldest = tuple(sorted(starts)[:needed])
            loads[name] = decisions.TypeLoad(held[name], unstarted[name], len(starts), oldest)
        return loads

    def set_limits(self, limits: dict[str, decisions.TypeLimit]) -> None:
        self._limits = dict(limits)

    async def pause_queue(self, name: str, paused: bool, now: float) -> decisions.QueueState:
        state = decisions.paused_change(self._queues.get(name), name, paused, now)
        self._queues[name] = state
        return state

    async def queue_states(self) -> list[decisions.QueueState]:
        counts = (await self.counts()).by_queue
        names = sorted(set(counts) | set(self._queues))
        return [
            decisions.QueueState(
                name,
                self._queues.get(name, decisions.QueueState(name)).paused,
                self._queues.get(name, decisions.QueueState(name)).paused_at,
                counts.get(name, {}),
            )
            for name in names
        ]

    def _apply(self, change: decisions.Change | None, moves: list[Transition]) -> None:
        """Keep what a decision made: the moves in history, the task as it now stands."""
        if change is None:
            return
        for move in change.moves:
            self._note(move.event)
            if move.task.status is TaskStatus.RUNNING and move.event.from_status is (
                TaskStatus.QUEUED
            ):
                limit = self._limits.get(move.task.type)
                if limit is not None and limit.rate is not None:
                    self._starts.setdefault(move.task.type, []).append(move.event.at)
        if change.moves:
            previous = change.moves[0].event.from_status
            self._place(change.task, previous)
            moves.extend(change.moves)
        else:  # the lease changed, not the status
            before = self._tasks[change.task.id]
            self._tasks[change.task.id] = change.task
            if before.lease_owner is not None and change.task.lease_owner is None:
                self._place(change.task, change.task.status)  # back among the claimable

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Transition]:
        moves: list[Transition] = []
        for outcome in outcomes:
            task = self._tasks.get(outcome.task_id)
            if task is not None:
                change = decisions.settle(task, outcome, now)
                self._apply(change, moves)
                if change is not None and outcome.workflow is not None:
                    self._continue(change.task, outcome.workflow, now, moves)
        return self._follow(moves, now)

    # -- workflows -----------------------------------------------------------------------
    def _continue(
        self,
        workflow: Task,
        continuation: workflows.Continuation,
        now: float,
        moves: list[Transition],
    ) -> None:
        """Write what a workflow's continuation recorded and started; if it now waits
        for something that happened meanwhile, queue it again."""
        history = self._history.setdefault(workflow.id, {})
        steps = iter(continuation.steps)
        for entry in continuation.entries:
            if entry.kind is workflows.EntryKind.STEP:
                started = self._arrive(next(steps), now, moves)
                entry = dataclasses.replace(entry, step_id=started.task.id)
            history[entry.seq] = entry
        for done in continuation.resolved:
            history[done.seq] = dataclasses.replace(
                history[done.seq], outcome=done.outcome, value=done.value, resolved_at=now
            )
        signals = self._signals.get(workflow.id, [])
        taken = dict(continuation.consumed)
        for index, signal in enumerate(signals):
            if signal.id in taken:
                signals[index] = dataclasses.replace(signal, consumed_by=taken[signal.id])
        if workflow.status is TaskStatus.WAITING:
            waiting = [signal for signal in signals if signal.consumed_by is None]
            why = workflows.stirs(continuation, history, waiting, workflow.run_at, now)
            if why is not None:
                self._apply(decisions.wake(workflow, now, why), moves)

    def _follow(self, moves: list[Transition], now: float) -> list[Transition]:
        """``moves`` and what they lead to: a step that ended is written into its
        workflow's history and wakes it; a workflow cancelled cancels its steps."""
        index = 0
        while index < len(moves):
            task, event = moves[index]
            index += 1
            if decisions.step_ended(moves[index - 1]):
                assert task.parent_id is not None
                self._step_ended(task, now, moves)
            if event.to_status is TaskStatus.CANCELLED and task.id in self._steps:
                for step_id in self._steps[task.id]:
                    step = self._tasks.get(step_id)
                    if step is not None:
                        self._apply(decisions.cancel(step, now, decisions.WITH_WORKFLOW), moves)
        return moves

    def _step_ended(self, step: Task, now: float, moves: list[Transition]) -> None:
        assert step.parent_id is not None
        history = self._history.get(step.parent_id, {})
        outcome, value, error = workflows.step_resolution(step)
        for seq, entry in history.items():
            if entry.step_id == step.id and entry.outcome is None:
                history[seq] = dataclasses.replace(
                    entry, outcome=outcome, value=value, error=error, resolved_at=now
                )
        parent = self._tasks.get(step.parent_id)
        if parent is not None:
            self._apply(decisions.wake(parent, now, f"step {step.type!r} ended"), moves)

    async def workflow(self, workflow_id: str) -> workflows.WorkflowState | None:
        task = self._tasks.get(workflow_id)
        if task is None:
            return None
        history = self._history.get(workflow_id, {})
        return workflows.WorkflowState(
            task,
            [history[seq] for seq in sorted(history)],
            list(self._signals.get(workflow_id, ())),
            [self._tasks[i] for i in self._steps.get(workflow_id, ()) if i in self._tasks],
        )

    async def signal(
        self, workflow_id: str, name: str, payload: object, now: float
    ) -> list[Transition]:
        task = self._task(workflow_id)
        workflows.check_signalled(task)
        self._signal_ids += 1
        record = workflows.SignalRecord(self._signal_ids, workflow_id, name, payload, now)
        self._signals.setdefault(workflow_id, []).append(record)
        moves: list[Transition] = []
        if workflows.awaits_signal(self._history.get(workflow_id, {}).values(), name):
            self._apply(decisions.wake(task, now, f"signal {name!r}"), moves)
        return moves

    async def heartbeat(self, task_ids: Sequence[str], owner: str, lease_until: float) -> set[str]:
        held: set[str] = set()
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            change = None if task is None else decisions.heartbeat(task, owner, lease_until)
            if change is not None:
                self._tasks[task_id] = change.task
                held.add(task_id)
        return held

    async def release(self, task_ids: Sequence[str], owner: str, now: float) -> list[Transition]:
        moves: list[Transition] = []
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None:
                self._apply(decisions.release(task, owner, now), moves)
        return moves

    async def recover_expired(self, now: float) -> list[Transition]:
        moves: list[Transition] = []
        for task in [t for t in self._tasks.values() if decisions.expired(t, now)]:
            self._apply(decisions.expire(task, now), moves)
        return self._follow(moves, now)

    async def cancel(self, task_id: str, now: float) -> list[Transition]:
        task = self._task(task_id)
        move = transition(task, TaskStatus.CANCELLED, at=now, detail="cancelled by request")
        return self._follow([self._record(move)], now)

    async def requeue(self, task_id: str, now: float) -> Transition:
        return self._record(requeued(self._task(task_id), at=now))

    async def set_progress(
        self, task_id: str, fraction: float, message: str | None, now: float
    ) -> None:
        task = self._tasks.get(task_id)
        if task is not None and task.status is TaskStatus.RUNNING:
            self._tasks[task_id] = _with_progress(task, fraction, message, now)

    async def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    async def list_tasks(
        self,
        filter: TaskFilter,
        limit: int,
        cursor: str | None,
        include: frozenset[str] = TASK_DATA,
        max_bytes: int | None = None,
    ) -> Page:
        order = self._order
        if filter.oldest_first:
            start = 0 if cursor is None else bisect.bisect_right(order, cursor)
            indexes = range(start, len(order))
        else:
            end = len(order) if cursor is None else bisect.bisect_left(order, cursor)
            indexes = range(end - 1, -1, -1)
        matching = (task for i in indexes if _matches(task := self._tasks[order[i]], filter))
        items = list(itertools.islice(matching, max(limit, 0)))
        more = False
        if include:
            fits = fitting([_data_size(task, include) for task in items], max_bytes)
            more = fits < len(items)
            items = items[:fits]
        more = bool(items) and (more or next(matching, None) is not None)
        payload, result = "payload" in include, "result" in include
        if not (payload and result):
            items = [
                dataclasses.replace(
                    task,
                    payload=task.payload if payload else None,
                    result=task.result if result else None,
                )
                for task in items
            ]
        return Page(items, items[-1].id if more else None)

    async def events(self, task_id: str) -> list[TaskEvent]:
        return [_event(task_id, stored) for stored in self._events.get(task_id, ())]

    async def events_after(self, after: int, limit: int) -> list[Recorded]:
        found: list[Recorded] = []
        log = self._log
        for offset in range(max(0, after - self._log_base), len(log)):
            task_id, index = log[offset]
            kept = self._events.get(task_id)
            if kept is None:
                continue  # the task was deleted since
            event = _event(task_id, kept[index])
            found.append(Recorded(self._log_base + offset + 1, self._tasks[task_id], event))
            if len(found) >= limit:
                break
        return found

    async def last_event_id(self) -> int:
        return self._log_base + len(self._log)

    async def finished_since(self, since: float, limit: int) -> list[Finished]:
        ended = [
            Finished(task.type, task.status is TaskStatus.COMPLETED, at, task.started_at)
            for task in self._tasks.values()
            if task.status in (TaskStatus.COMPLETED, TaskStatus.DEAD)
            and (at := task.finished_at) is not None
            and at >= since
        ]
        ended.sort(key=lambda row: row.finished_at, reverse=True)
        return ended[:limit]

    async def counts(self) -> Counts:
        by_queue: dict[str, dict[str, int]] = {}
        for (queue, status), count in self._counts.items():
            if count:
                by_queue.setdefault(queue, {})[status.value] = count
        return Counts(by_queue)

    async def purge(self, task_ids: Sequence[str]) -> int:
        doomed = [
            task_id
            for task_id in dict.fromkeys(task_ids)
            if (task := self._tasks.get(task_id)) is not None and task.status is TaskStatus.DEAD
        ]
        self._delete(doomed)
        return len(doomed)

    async def prune(self, cutoffs: Mapping[TaskStatus, float], limit: int) -> int:
        doomed: list[str] = []
        for task in self._tasks.values():
            if len(doomed) >= limit:
                break
            if decisions.prunable(task, cutoffs):
                doomed.append(task.id)
        self._delete(doomed)
        return len(doomed)

    async def bulk(self, step: BulkStep, now: float) -> BulkDone:
        order = self._order
        index = 0 if step.after is None else bisect.bisect_right(order, step.after)
        end = bisect.bisect_left(order, step.until)
        selected: list[Task] = []
        while index < end and len(selected) < step.limit:
            task = self._tasks[order[index]]
            index += 1
            if decisions.selects(step.selection, task):
                selected.append(task)
        after = selected[-1].id if len(selected) == step.limit else None
        if step.dry_run:
            return BulkDone(len(selected), [], after)
        if step.action is decisions.Bulk.PURGE:
            self._delete([task.id for task in selected])
            return BulkDone(len(selected), [], after)
        moves: list[Transition] = []
        held: list[str] = []
        touched = 0
        for task in selected:
            change = decisions.bulk(step.action, task, now)
            if change is not None:
                touched += 1
                if task.lease_owner is not None:
                    held.append(task.id)
                self._apply(change, moves)
        return BulkDone(touched, self._follow(moves, now), after, tuple(held))

    def _delete(self, doomed: list[str]) -> None:
        for task_id in doomed:
            task = self._tasks.pop(task_id)
            del self._events[task_id]
            self._history.pop(task_id, None)
            self._signals.pop(task_id, None)
            self._steps.pop(task_id, None)
            self._counts[(task.queue, task.status)] -= 1
            if task.idempotency_key is not None:
                self._idempotency.pop(task.idempotency_key, None)
        if doomed:
            gone = set(doomed)
            self._order = [task_id for task_id in self._order if task_id not in gone]
            # The oldest entries go with their tasks (the rest are skipped when read).
            dead = 0
            for task_id, _ in self._log:
                if task_id in self._events:
                    break
                dead += 1
            del self._log[:dead]
            self._log_base += dead


def _event(task_id: str, stored: _StoredEvent) -> TaskEvent:
    source, to, at, attempt, detail, node, worker = stored
    return TaskEvent(
        task_id,
        None if source is None else TaskStatus(source),
        TaskStatus(to),
        at,
        attempt,
        detail,
        node,
        worker,
    )


def _data_size(task: Task, include: frozenset[str]) -> int:
    """The bytes of ``task``'s included payload and result, as compact JSON (none for
    null, as the SQL stores count a NULL)."""
    return sum(
        len(pydantic_core.to_json(value))
        for name, value in (("payload", task.payload), ("result", task.result))
        if name in include and value is not None
    )


def _matches(task: Task, filter: TaskFilter) -> bool:
    return filter.matches(task)


def _with_progress(task: Task, fraction: float, message: str | None, now: float) -> Task:
    return evolve(task, {"progress": fraction, "progress_message": message, "updated_at": now})
