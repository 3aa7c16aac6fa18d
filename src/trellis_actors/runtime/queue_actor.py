"""The queue actor: a small local buffer of claimed work, handed to idle workers on demand."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref
from ..actors._actor import _STOP
from ..errors import ActorCrashed, AskTimeout, TrellisError
from ..lifecycle import Task, TaskError, TaskStatus
from ..stores.base import Outcome
from .messages import (
    CancelRunning,
    CancelTask,
    Claim,
    Drain,
    Finish,
    Heartbeat,
    Next,
    Promote,
    QueueInfo,
    QueueMsg,
    Release,
    ReleaseAll,
    Settle,
    StopAsking,
    StoreMsg,
    Tick,
    WaitIdle,
    WorkerInfo,
    WorkReady,
)

log = structlog.get_logger("trellis.queue")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    owner: str  # the lease owner: this node
    queues: tuple[str, ...] | None = None  # None: every queue
    lease: float = 30.0
    claim_batch: int = 32
    # Claims take this many while every task type seen is fast (None: claim_batch). Slow
    # tasks are not claimed far ahead: they would wait under our lease, out of other
    # nodes' reach.
    fast_claim_batch: int | None = None
    prefetch: int = 16  # at most this many fast tasks handed to a worker at once
    fast_task: float = 0.005  # tasks quicker than this on average count as fast
    # A worker is handed at most about this much measured work at once: many no-op tasks,
    # a few 2 ms ones. Nothing waits long in a busy worker's hands while another idles.
    prefetch_budget: float = 0.01
    poll_interval: float = 1.0
    flush_interval: float = 0.02  # outcomes wait at most this long for company
    concurrency: Mapping[str, int] | None = None  # per task type, on this node


@dataclass(slots=True)
class _Handed:
    task: Task
    worker: str
    worker_ref: Ref[Any]
    at: float  # trio time it was handed out
    batch: int  # how many tasks went out with it


class QueueActor(Actor[QueueMsg]):
    """Claims batches of due tasks from the store and gives one to each idle worker.

    Workers ask (``Next``); the queue answers when it has a task whose type is under its
    concurrency limit, so backpressure and limits follow from demand. The queue also keeps
    the leases of the tasks it holds alive, promotes delayed tasks when they fall due, and
    notices when a worker was restarted while holding a task (the task is retried).
    """

    kind = "queue"

    def __init__(self, store: Ref[StoreMsg], clock: Clock, config: QueueConfig) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._config = config
        self._limits = dict(config.concurrency or {})
        self._seq = itertools.count()
        self._buffer: list[tuple[int, float, int, Task]] = []
        self._parked: dict[str, deque[Task]] = {}
        self._waiting: deque[Next] = deque()
        self._asking: set[str] = set()  # workers with a request in _waiting
        self._handed: dict[str, _Handed] = {}
        self._by_worker: dict[str, list[str]] = {}  # task ids in each worker's hands
        self._running: Counter[str] = Counter()
        self._done: Counter[str] = Counter()
        self._idle_waiters: list[WaitIdle] = []
        self._dropped: set[str] = set()
        self._draining = False
        self._maybe_work = True
        self._next_due: float | None = None
        self._next_heartbeat = 0.0
        self._next_poll = 0.0
        self._timer_scope: trio.CancelScope | None = None
        self._outcomes: list[Outcome] = []  # reported by workers, not yet sent to the store
        self._speed: dict[str, float] = {}  # moving average of seconds per task, by type
        self._claim_size = config.claim_batch  # tasks per claim, and outcomes per flush
        self._flush_at = math.inf

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[QueueMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        now = trio.current_time()
        self._next_heartbeat = now + self._config.lease / 3
        self._next_poll = now + self._config.poll_interval
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timer)
            task_status.started(self.ref)
            self.ref.tell_nowait(Tick())  # find work that was stored before we started
            while (msg := await self.receive()) is not _STOP:
                await self.handle(msg)  # type: ignore[arg-type]  # not _STOP
                if self._outcomes and (
                    len(self._outcomes) >= self._claim_size
                    or (not self._buffer and not len(self.mailbox))
                ):
                    await self._flush_outcomes()
            await self._flush_outcomes()
            await self._release_buffer()
            nursery.cancel_scope.cancel()

    async def handle(self, msg: QueueMsg) -> None:
        match msg:
            case Next(worker, _, outcomes, replaces):
                if outcomes:
                    self._report(outcomes)
                if self._by_worker.get(worker):
                    if replaces is not None:
                        # Answered after the worker stopped waiting: never started.
                        for task_id in list(self._by_worker[worker]):
                            self._push(self._settle(task_id, counted=False).task)
                    elif not outcomes:
                        await self._worker_lost(worker)
                if self._draining:
                    msg.reply.send(None)
                    return
                if worker in self._asking:  # it gave up on an older request: drop that one
                    self._drop_requests(worker)
                self._waiting.append(msg)
                self._asking.add(worker)
                await self._dispatch()
            case Settle(_, outcomes, released):
                self._report(outcomes)
                for task_id in released:
                    if task_id in self._handed:
                        self._settle(task_id, counted=False)
            case StopAsking(worker):
                self._drop_requests(worker)
            case WorkReady(due_at):
                self._maybe_work = True
                if due_at is not None:
                    self._set_due(due_at)
                await self._dispatch()
            case CancelRunning(task_id):
                handed_or_none = self._handed.get(task_id)
                if handed_or_none is not None:
                    _tell_worker(handed_or_none, CancelTask(task_id))
                else:
                    self._dropped.add(task_id)  # may sit in the buffer
            case Drain():
                self._draining = True
                while self._waiting:
                    self._waiting.popleft().reply.send(None)
                self._asking.clear()
                await self._release_buffer()
                msg.reply.send(None)
            case ReleaseAll():
                for handed in self._handed.values():
                    _tell_worker(handed, CancelTask(handed.task.id, "shutdown", release=True))
            case WaitIdle():
                if self._handed:
                    self._idle_waiters.append(msg)
                else:
                    msg.reply.send(None)
            case QueueInfo():
                msg.reply.send(self._workers())
            case Tick():
                await self._tick()
                msg.reply.send(None)
            case _:
                assert_never(msg)

    # -- handing out work ---------------------------------------------------------------
    async def _dispatch(self) -> None:
        while self._waiting:
            first = self._pop_ready()
            if first is None:
                if not self._maybe_work or self._draining or not await self._claim():
                    return
                continue
            tasks = [first]
            # A deep backlog of fast tasks goes out several at a time (prefetch), up to a
            # budget of measured work: one round trip per task would cost more than the
            # tasks. Slow or unmeasured tasks go one by one, so none waits in a busy
            # worker's hands while another idles.
            backlog = len(self._buffer) + 1  # the first task included
            share = min(self._config.prefetch, backlog // len(self._waiting))
            if share > 1 and self._is_fast(first.type):
                budget = self._config.prefetch_budget - self._speed[first.type]
                while len(tasks) < share and self._buffer:
                    upcoming = self._buffer[0][3].type
                    if not self._is_fast(upcoming):
                        break
                    budget -= self._speed[upcoming]
                    if budget < 0:
                        break
                    task = self._pop_ready()
                    if task is None:
                        break
                    tasks.append(task)
            request = self._waiting.popleft()
            self._asking.discard(request.worker)
            held = self._by_worker.setdefault(request.worker, [])
            now = trio.current_time()
            for task in tasks:
                self._handed[task.id] = _Handed(
                    task, request.worker, request.worker_ref, now, len(tasks)
                )
                held.append(task.id)
                self._running[task.type] += 1
            request.reply.send(tuple(tasks))

    def _drop_requests(self, worker: str) -> None:
        """Answer a worker's waiting requests with None and forget them."""
        for request in [req for req in self._waiting if req.worker == worker]:
            self._waiting.remove(request)
            request.reply.send(None)
        self._asking.discard(worker)

    def _is_fast(self, task_type: str) -> bool:
        return self._speed.get(task_type, math.inf) <= self._config.fast_task

    async def _claim(self) -> bool:
        await self._flush_outcomes()  # the store takes both in one batch
        config = self._config
        limit = max(self._claim_size, len(self._waiting) * config.prefetch)
        lease_until = self._clock.now() + config.lease
        try:
            tasks = await self._store.ask(Claim(config.queues, limit, config.owner, lease_until))
        except (ActorCrashed, AskTimeout) as exc:
            # The store failed (it is restarted by its supervisor) or is stuck: keep the
            # waiting workers and try again at the next poll, rather than crash and make
            # them wait out their own timeout.
            log.warning("claim failed; trying again at the next poll", error=str(exc))
            self._maybe_work = False
            return False
        if len(tasks) < limit:
            self._maybe_work = False
        for task in tasks:
            self._push(task)
        return bool(tasks)

    def _push(self, task: Task) -> None:
        entry = (-task.priority, task.queued_at or 0.0, next(self._seq), task)
        heapq.heappush(self._buffer, entry)

    def _pop_ready(self) -> Task | None:
        while self._buffer:
            task = heapq.heappop(self._buffer)[3]
            if task.id in self._dropped:
                self._dropped.discard(task.id)
                continue
            limit = self._limits.get(task.type)
            if limit is not None and self._running[task.type] >= limit:
                self._parked.setdefault(task.type, deque()).append(task)
                continue
            return task
        return None

    def _settle(self, task_id: str, *, counted: bool = True) -> _Handed:
        """A handed-out task left its worker's hands."""
        handed = self._handed.pop(task_id)
        held = self._by_worker.get(handed.worker)
        if held is not None and task_id in held:
            held.remove(task_id)
        self._running[handed.task.type] -= 1
        if counted:
            self._done[handed.worker] += 1
        parked = self._parked.get(handed.task.type)
        while parked:
            self._push(parked.popleft())
        if not self._handed:
            for waiter in self._idle_waiters:
                waiter.reply.send(None)
            self._idle_waiters.clear()
        return handed

    def _report(self, outcomes: tuple[Outcome, ...]) -> None:
        now = trio.current_time()
        for outcome in outcomes:
            if outcome.task_id in self._handed:
                self._add_outcome(outcome)
                handed = self._settle(outcome.task_id)
                # How long tasks of this type take, for deciding on prefetch: as the
                # worker measured it, else (roughly) the batch's time shared out.
                sample = outcome.seconds
                if sample is None:
                    sample = (now - handed.at) / handed.batch
                previous = self._speed.get(handed.task.type, sample)
                self._speed[handed.task.type] = 0.8 * previous + 0.2 * sample
        fast = self._config.fast_claim_batch
        if fast is not None:
            quick = all(speed <= self._config.fast_task for speed in self._speed.values())
            self._claim_size = fast if quick and self._speed else self._config.claim_batch

    async def _worker_lost(self, worker: str) -> None:
        """The worker asked afresh while holding tasks: it crashed and was restarted."""
        for task_id in list(self._by_worker[worker]):
            task = self._settle(task_id, counted=False).task
            retry = task.attempt < task.max_attempts
            log.warning("worker lost its task", worker=worker, task_id=task.id, retry=retry)
            self._add_outcome(
                Outcome(
                    task.id,
                    self._config.owner,
                    task.attempt,
                    TaskStatus.RETRYING if retry else TaskStatus.FAILED,
                    error=TaskError("WorkerCrashed", f"{worker} crashed while holding the task"),
                    retry_at=self._clock.now(),
                )
            )

    def _add_outcome(self, outcome: Outcome) -> None:
        if not self._outcomes:
            self._flush_at = trio.current_time() + self._config.flush_interval
            if self._timer_scope is not None:
                self._timer_scope.deadline = min(self._timer_scope.deadline, self._flush_at)
        self._outcomes.append(outcome)

    async def _flush_outcomes(self) -> None:
        """Outcomes go to the store together: one message, one commit."""
        if self._outcomes:
            outcomes, self._outcomes = tuple(self._outcomes), []
            await self._store.tell(Finish(outcomes))

    async def _release_buffer(self) -> None:
        tasks = [entry[3] for entry in self._buffer]
        tasks += [task for parked in self._parked.values() for task in parked]
        self._buffer.clear()
        self._parked.clear()
        if tasks:
            ids = tuple(task.id for task in tasks)
            await self._store.ask(Release(ids, self._config.owner))

    # -- time: due tasks, leases, polling -----------------------------------------------
    def _set_due(self, due_at: float) -> None:
        if self._next_due is None or due_at < self._next_due:
            self._next_due = due_at
            if self._timer_scope is not None:
                self._timer_scope.deadline = min(
                    self._timer_scope.deadline, self._clock.to_trio(due_at)
                )

    def _wake_at(self) -> float:
        due = math.inf if self._next_due is None else self._clock.to_trio(self._next_due)
        flush = self._flush_at if self._outcomes else math.inf
        return min(due, self._next_heartbeat, self._next_poll, flush)

    async def _timer(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._wake_at()) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            await self.ref.ask(Tick(), timeout=None)

    async def _tick(self) -> None:
        try:
            await self._chores(trio.current_time())
        except (ActorCrashed, AskTimeout) as exc:
            # As for a failed claim: the store is restarted by its supervisor; what was
            # due is looked for again at the next poll.
            log.warning("store call failed; trying again at the next poll", error=str(exc))
            self._next_due = None
        await self._dispatch()

    async def _chores(self, now: float) -> None:
        """Flush outcomes, promote due tasks, renew leases, poll: whatever has come due."""
        if self._outcomes and now >= self._flush_at:
            await self._flush_outcomes()
        if self._next_due is not None and self._clock.to_trio(self._next_due) <= now:
            self._next_due = await self._store.ask(Promote())
            self._maybe_work = True
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._config.lease / 3
            await self._heartbeat()
        if now >= self._next_poll:
            self._next_poll = now + self._config.poll_interval
            self._maybe_work = True
            if self._next_due is None:
                self._next_due = await self._store.ask(Promote())

    async def _heartbeat(self) -> None:
        ids = (
            tuple(self._handed)
            + tuple(entry[3].id for entry in self._buffer)
            # Tasks parked behind their type's concurrency limit are claimed too.
            + tuple(task.id for parked in self._parked.values() for task in parked)
        )
        if not ids:
            return
        lease_until = self._clock.now() + self._config.lease
        held = await self._store.ask(Heartbeat(ids, self._config.owner, lease_until))
        for task_id in ids:
            if task_id in held:
                continue
            handed = self._handed.get(task_id)
            if handed is not None:
                _tell_worker(handed, CancelTask(task_id, "the task's lease was lost"))
            else:
                self._dropped.add(task_id)

    def _workers(self) -> tuple[WorkerInfo, ...]:
        names = set(self._done) | set(self._by_worker) | {r.worker for r in self._waiting}
        infos = []
        for name in sorted(names):
            held = self._by_worker.get(name)
            task = self._handed[held[0]].task if held else None
            infos.append(
                WorkerInfo(
                    name=name,
                    current_task=None if task is None else task.id,
                    current_type=None if task is None else task.type,
                    tasks_done=self._done[name],
                )
            )
        return tuple(infos)


def _tell_worker(handed: _Handed, msg: CancelTask) -> None:
    try:
        handed.worker_ref.tell_nowait(msg)
    except TrellisError:
        log.warning("could not reach a worker to cancel its task", worker=handed.worker)
