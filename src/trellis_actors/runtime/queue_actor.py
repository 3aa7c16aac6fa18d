"""The queue actor: claims what idle workers will start now and hands it to them."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref, RegistryChange, Subscribe
from ..decisions import Outcome
from ..errors import ActorCrashed, AskTimeout, TrellisError
from ..lifecycle import Task, TaskError, TaskStatus
from .messages import (
    Assign,
    CancelRunning,
    CancelTask,
    Claim,
    Claimed,
    Demand,
    Drain,
    Finish,
    Heartbeat,
    HeldBack,
    Progress,
    Promote,
    QueueInfo,
    QueueMsg,
    Ready,
    Release,
    ReleaseAll,
    ReportProgress,
    Started,
    StoreMsg,
    Tick,
    WaitIdle,
    WorkerDown,
    WorkerInfo,
    WorkReady,
)

log = structlog.get_logger("trellis.queue")

#: A standing demand as (limit, excluded types): none, and not known (told afresh).
_NONE: tuple[int, tuple[str, ...]] = (0, ())
_UNKNOWN: tuple[int, tuple[str, ...]] = (-1, ())


@dataclass(frozen=True, slots=True)
class QueueConfig:
    owner: str  # the lease owner: this node
    queues: tuple[str, ...] | None = None  # None: every queue
    lease: float = 30.0
    # Fast tasks a node may claim ahead for each idle worker, within prefetch_budget.
    # Slow and unmeasured tasks are claimed one per idle worker: a task waiting under our
    # lease is out of other nodes' reach.
    claim_ahead: int = 32
    prefetch: int = 16  # at most this many fast tasks handed to a worker at once
    fast_task: float = 0.005  # tasks quicker than this on average count as fast
    # A worker is handed (and a node claims for it) at most about this much measured
    # work at once: many no-op tasks, a few 2 ms ones.
    prefetch_budget: float = 0.01
    poll_interval: float = 1.0
    flush_interval: float = 0.02  # outcomes wait at most this long for company
    flush_batch: int = 256  # ... or until this many are waiting
    concurrency: Mapping[str, int] | None = None  # per task type, on this node
    stop_timeout: float = 5.0  # how long a stopping queue waits for its last commit


@dataclass(slots=True)
class _Handed:
    task: Task  # as claimed: it runs as attempt task.attempt + 1
    worker: str
    incarnation: int
    worker_ref: Ref[Any]
    at: float  # trio time it was handed out
    batch: int  # how many tasks went out with it
    started: bool = False  # a start was reported (to the store, with the next flush)


class QueueActor(Actor[QueueMsg]):
    """Claims what idle workers will start now and gives it to them.

    Workers say when they are idle (``Ready``); the queue claims for them — one task per
    idle worker, or a few more of types measured as fast — and answers with ``Assign``.
    Backpressure and concurrency limits follow from that demand. A claimed task stays
    ``queued`` under this node's lease until its worker reports its start; the queue
    renews the leases it holds, writes starts and outcomes back in batches, gives back
    what it cannot start, and settles what a crashed worker held (it hears of a crash from
    the registry).

    While idle workers wait and nothing stored is for them, the queue keeps the store told
    of that standing demand (``Demand``: the claim it would make now); the store runs it
    in the commit that stores new due tasks and sends what it took (``Claimed``), which
    the queue hands out as if it had claimed it.
    """

    kind = "queue"

    def __init__(
        self,
        store: Ref[StoreMsg],
        clock: Clock,
        config: QueueConfig,
        registry: Ref[Any] | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._config = config
        self._registry = registry
        self._limits = dict(config.concurrency or {})
        self._seq = itertools.count()
        self._buffer: list[tuple[int, float, int, Task]] = []  # claimed, not handed out
        self._waiting: dict[str, Ready] = {}  # idle workers, in the order they asked
        self._handed: dict[str, _Handed] = {}
        self._by_worker: dict[str, list[str]] = {}  # task ids in each worker's hands
        self._incarnations: dict[str, int] = {}  # the live workers: the start of each
        self._running: Counter[str] = Counter()  # handed out, by type
        self._done: Counter[str] = Counter()
        self._idle_waiters: list[WaitIdle] = []
        self._draining = False
        self._maybe_work = True
        self._next_due: float | None = None
        self._next_heartbeat = 0.0
        self._next_poll = 0.0
        self._outcomes: list[Outcome] = []  # starts and outcomes, not yet sent to the store
        self._releases: list[str] = []  # claimed tasks to give back, not yet sent
        self._speed: dict[str, float] = {}  # moving average of seconds per task, by type
        # The types the last claim brought: while all are fast, claims take more.
        self._last_claimed: set[str] = set()
        self._flush_at = math.inf
        self._ticker = self.timer(Tick)
        self._demand = _NONE  # as last told the store

    # -- the loop ------------------------------------------------------------------------
    async def on_start(self) -> None:
        now = trio.current_time()
        self._next_heartbeat = now + self._config.lease / 3
        self._next_poll = now + self._config.poll_interval
        self._ticker.at(now)  # find work that was stored before we started
        # A demand left by an earlier start of this actor is not ours to meet.
        await self._store.tell(self._demand_msg(*_NONE))

    async def background(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Hear from the registry when a worker stops or crashes."""
        if self._registry is None:
            task_status.started()
            return
        send, receive = trio.open_memory_channel[RegistryChange](math.inf)
        await self._registry.ask(Subscribe(send))
        task_status.started()
        async with receive:
            async for change in receive:
                if change.kind == "worker" and not change.up:
                    self.ref.tell_nowait(WorkerDown(change.name, change.incarnation))

    async def handle(self, msg: QueueMsg) -> None:
        match msg:
            case Ready():
                self._ready(msg)
                await self._dispatch()
            case Started(worker, task_id, attempt, at):
                handed = self._handed.get(task_id)
                if handed is not None and not handed.started:
                    handed.started = True
                    owner = self._config.owner
                    start = Outcome(
                        task_id, owner, attempt, TaskStatus.RUNNING, started_at=at, worker=worker
                    )
                    self._add(start)
            case ReportProgress(task_id, fraction, message):
                await self._flush()  # the task's start goes first
                await self._store.tell(Progress(task_id, fraction, message))
            case WorkerDown(worker, incarnation):
                self._lost(worker, incarnation)
                await self._dispatch()
            case WorkReady(due_at):
                self._maybe_work = True
                if due_at is not None:
                    self._set_due(due_at)
                await self._dispatch()
            case HeldBack(until):
                self._set_due(until)  # claim again when a rate limit lets one start
            case Claimed(tasks):
                self._demand = _UNKNOWN  # the store took some in: ours is told anew
                if self._draining:
                    self._give_back([task.id for task in tasks])
                else:
                    self._took(tasks)
                    await self._dispatch()
            case CancelRunning(task_id):
                self._cancel(task_id)
            case Drain():
                self._draining = True
                self._waiting.clear()
                self._release_buffer()
                # Withdrawn before the drain is confirmed (waiting, if the mailbox is full).
                await self._store.tell(self._demand_msg(*_NONE))
                self._demand = _NONE
                await self._flush()
                msg.reply.send(None)
            case ReleaseAll():
                for handed in self._handed.values():
                    attempt = handed.task.attempt + 1
                    _tell_worker(handed, CancelTask(handed.task.id, attempt, "shutdown", True))
            case WaitIdle():
                if self._handed:
                    self._idle_waiters.append(msg)
                else:
                    msg.reply.send(None)
            case QueueInfo():
                msg.reply.send(self._workers())
            case Tick():
                await self._tick()
            case _:
                assert_never(msg)
        if self._waiting or self._demand[0]:
            self._tell_demand()
        if (self._outcomes or self._releases) and (
            len(self._outcomes) >= self._config.flush_batch
            or (not self._buffer and not len(self.mailbox))
        ):
            await self._flush()

    async def on_stop(self) -> None:
        """Settle before exit: what stopping workers reported is committed, and what was
        claimed but not started goes back, before the queue ends (within a bound)."""
        self._draining = True
        with trio.move_on_after(self._config.stop_timeout) as scope:
            scope.shield = True
            for msg in self.leftovers():
                if isinstance(msg, WaitIdle):
                    msg.reply.send(None)  # no more work is handed out
                else:
                    await self.handle(msg)
            self._release_buffer()
            try:
                await self._flush(confirm=True)
            except TrellisError as exc:
                log.error("the store did not take the last outcomes", error=str(exc))
        if scope.cancelled_caught:
            log.error("the store did not confirm the last outcomes in time; leases will expire")

    # -- workers -------------------------------------------------------------------------
    def _ready(self, msg: Ready) -> None:
        worker = msg.worker
        if msg.incarnation != self._incarnations.get(worker, msg.incarnation):
            self._lost(worker, self._incarnations[worker])  # a new start: the old one died
        if msg.stopping:
            self._incarnations.pop(worker, None)  # no longer counted among the workers
        else:
            self._incarnations[worker] = msg.incarnation
        if msg.outcomes:
            self._report(msg.outcomes)
        for task_id in msg.released:
            if task_id in self._handed:
                self._settle(task_id, counted=False)
                self._give_back([task_id])
        self._waiting.pop(worker, None)  # an older request of the same worker
        if not msg.stopping and not self._draining:
            self._waiting[worker] = msg

    def _lost(self, worker: str, incarnation: int) -> None:
        """A worker incarnation is gone: its started tasks were attempts that crashed,
        the others go back to the queue as they were."""
        if self._incarnations.get(worker) == incarnation:
            self._waiting.pop(worker, None)
            del self._incarnations[worker]
        for task_id in list(self._by_worker.get(worker, ())):
            handed = self._handed[task_id]
            if handed.incarnation != incarnation:
                continue
            self._settle(task_id, counted=False)
            task = handed.task
            if not handed.started:
                self._give_back([task_id])
                continue
            attempt = task.attempt + 1
            retry = attempt < task.max_attempts
            log.warning("worker lost its task", worker=worker, task_id=task_id, retry=retry)
            self._add(
                Outcome(
                    task_id,
                    self._config.owner,
                    attempt,
                    TaskStatus.RETRYING if retry else TaskStatus.FAILED,
                    error=TaskError("WorkerCrashed", f"{worker} crashed while running the task"),
                    retry_at=self._clock.now(),
                    worker=worker,
                )
            )

    def _cancel(self, task_id: str) -> None:
        """The store cancelled a task this node may hold: stop its handler, or drop it."""
        handed = self._handed.get(task_id)
        if handed is not None:
            _tell_worker(handed, CancelTask(task_id, handed.task.attempt + 1))
            return
        kept = [entry for entry in self._buffer if entry[3].id != task_id]
        if len(kept) != len(self._buffer):
            heapq.heapify(kept)
            self._buffer = kept

    # -- handing out work ---------------------------------------------------------------
    async def _dispatch(self) -> None:
        waiting = self._waiting
        while waiting:
            first = self._pop_ready()
            if first is None:
                if not self._maybe_work or self._draining or not await self._claim():
                    break
                continue
            tasks = [first]
            # A deep backlog of fast tasks goes out several at a time (prefetch), up to a
            # budget of measured work: one round trip per task would cost more than the
            # tasks. Slow or unmeasured tasks go one by one, so none waits in a busy
            # worker's hands while another idles.
            backlog = len(self._buffer) + 1  # the first task included
            share = min(self._config.prefetch, backlog // len(waiting))
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
            worker = next(iter(waiting))
            request = waiting.pop(worker)
            held = self._by_worker.setdefault(worker, [])
            now = trio.current_time()
            for task in tasks:
                self._handed[task.id] = _Handed(
                    task, worker, request.incarnation, request.worker_ref, now, len(tasks)
                )
                held.append(task.id)
                self._running[task.type] += 1
            # A batch of fast tasks reports its starts with its outcomes (or once it runs
            # past the budget); anything else reports each start as it happens.
            fast = len(tasks) > 1 or self._is_fast(first.type)
            try:
                request.worker_ref.tell_nowait(Assign(tuple(tasks), fast))
            except TrellisError:  # stopped meanwhile: the tasks go back
                for task in tasks:
                    self._settle(task.id, counted=False)
                    self._give_back([task.id])
        if not waiting:
            self._give_back_slow()

    def _give_back_slow(self) -> None:
        """No worker is idle: claimed tasks that are not fast go back, for any node."""
        keep = [entry for entry in self._buffer if self._is_fast(entry[3].type)]
        if len(keep) != len(self._buffer):
            gone = [entry[3].id for entry in self._buffer if not self._is_fast(entry[3].type)]
            self._give_back(gone)
            heapq.heapify(keep)
            self._buffer = keep

    def _is_fast(self, task_type: str) -> bool:
        return self._speed.get(task_type, math.inf) <= self._config.fast_task

    def _wanted(self) -> tuple[int, tuple[str, ...]]:
        """What a claim asks for now: how many tasks, and the types at their limit here."""
        exclude = tuple(sorted(t for t, n in self._limits.items() if self._running[t] >= n))
        return self._claim_limit(), exclude

    def _claim_limit(self) -> int:
        """What the idle workers will start now: one task each; or — while the last claim
        brought only tasks measured as fast — about the prefetch budget of them for every
        worker (they come back for more within milliseconds)."""
        idle = len(self._waiting)
        last = self._last_claimed
        if not last or not all(self._is_fast(t) for t in last):
            return idle
        slowest = max(max(self._speed[t] for t in last), 1e-6)
        config = self._config
        ahead = min(config.claim_ahead, max(1, int(config.prefetch_budget / slowest)))
        workers = max(idle, len(self._incarnations))
        return max(idle, workers * ahead - len(self._buffer))

    async def _claim(self) -> bool:
        await self._flush()  # the store takes both in one batch
        config = self._config
        limit, exclude = self._wanted()
        lease_until = self._clock.now() + config.lease
        try:
            tasks = await self._store.ask(
                Claim(config.queues, limit, config.owner, lease_until, exclude)
            )
        except (ActorCrashed, AskTimeout, TrellisError) as exc:
            # The store failed or is unavailable: keep the waiting workers and try again
            # at the next poll, rather than crash and make them wait out their own timeout.
            log.warning("claim failed; trying again at the next poll", error=str(exc))
            self._maybe_work = False
            return False
        if len(tasks) < limit:
            self._maybe_work = False
        self._took(tasks)
        return bool(tasks)

    def _took(self, tasks: list[Task] | tuple[Task, ...]) -> None:
        """Claimed for us, by our ``Claim`` or by the store for our standing demand."""
        if tasks:
            self._last_claimed = {task.type for task in tasks}
        for task in tasks:
            self._push(task)

    def _tell_demand(self) -> None:
        """Keep the store told what we would claim now, if it changed: while workers wait
        and nothing stored is for them, new due tasks are claimed in the commit that stores
        them. A demand that goes stale costs a give-back, as a claim that raced would."""
        if self._waiting and not self._draining and not self._buffer:
            demand = self._wanted()
        else:
            demand = _NONE
        if demand == self._demand:
            return
        try:
            self._store.tell_nowait(self._demand_msg(*demand))
        except TrellisError:  # the store's mailbox is full: the nudge finds the work
            self._demand = _UNKNOWN  # told again next time
            return
        self._demand = demand

    def _demand_msg(self, limit: int, exclude: tuple[str, ...]) -> Demand:
        config = self._config
        return Demand(config.queues, limit, config.owner, config.lease, exclude)

    def _push(self, task: Task) -> None:
        entry = (-task.priority, task.queued_at or 0.0, next(self._seq), task)
        heapq.heappush(self._buffer, entry)

    def _pop_ready(self) -> Task | None:
        while self._buffer:
            task = heapq.heappop(self._buffer)[3]
            limit = self._limits.get(task.type)
            if limit is not None and self._running[task.type] >= limit:
                self._give_back([task.id])  # it cannot start here now
                continue
            return task
        return None

    def _settle(self, task_id: str, *, counted: bool = True) -> _Handed:
        """A handed-out task left its worker's hands."""
        handed = self._handed.pop(task_id)
        held = self._by_worker.get(handed.worker)
        if held is not None and task_id in held:
            held.remove(task_id)
        task_type = handed.task.type
        self._running[task_type] -= 1
        if self._running[task_type] + 1 == self._limits.get(task_type):
            self._maybe_work = True  # a type at its limit may be claimed again
        if counted:
            self._done[handed.worker] += 1
        if not self._handed:
            for waiter in self._idle_waiters:
                waiter.reply.send(None)
            self._idle_waiters.clear()
        return handed

    def _report(self, outcomes: tuple[Outcome, ...]) -> None:
        now = trio.current_time()
        for outcome in outcomes:
            handed = self._handed.get(outcome.task_id)
            if handed is None or outcome.attempt != handed.task.attempt + 1:
                continue
            self._add(outcome)
            self._settle(outcome.task_id)
            # How long tasks of this type take, for deciding on prefetch: as the
            # worker measured it, else (roughly) the batch's time shared out.
            sample = outcome.seconds
            if sample is None:
                sample = (now - handed.at) / handed.batch
            previous = self._speed.get(handed.task.type, sample)
            self._speed[handed.task.type] = 0.8 * previous + 0.2 * sample

    def _add(self, outcome: Outcome) -> None:
        self._due_to_flush()
        self._outcomes.append(outcome)

    def _give_back(self, task_ids: list[str]) -> None:
        """Claimed tasks this node will not start: back to the store with the next flush."""
        if task_ids:
            self._due_to_flush()
            self._releases += task_ids

    def _due_to_flush(self) -> None:
        if not self._outcomes and not self._releases:
            self._flush_at = trio.current_time() + self._config.flush_interval
            self._ticker.sooner(self._flush_at)

    async def _flush(self, *, confirm: bool = False) -> None:
        """Starts, outcomes and give-backs go to the store together: one message each, one
        commit. With ``confirm``, wait until the store has committed them and everything
        sent to it before (it handles its mail in order)."""
        self._flush_at = math.inf
        if self._outcomes or confirm:
            finish = Finish(tuple(self._outcomes))
            self._outcomes = []
            await self._store.tell(finish)
        if self._releases:
            release = Release(tuple(self._releases), self._config.owner)
            self._releases = []
            await self._store.tell(release)
            if confirm:
                await release.reply.wait()
        if confirm:
            await finish.reply.wait()

    def _release_buffer(self) -> None:
        self._give_back([entry[3].id for entry in self._buffer])
        self._buffer = []

    # -- the timer -----------------------------------------------------------------------
    def _set_due(self, due_at: float) -> None:
        if self._next_due is None or due_at < self._next_due:
            self._next_due = due_at
            self._ticker.sooner(self._clock.to_trio(due_at))

    async def _tick(self) -> None:
        try:
            await self._chores(trio.current_time())
        except (ActorCrashed, AskTimeout, TrellisError) as exc:
            # As for a failed claim: what was due is looked for again at the next poll.
            log.warning("store call failed; trying again at the next poll", error=str(exc))
            self._next_due = None
        await self._dispatch()
        wake = min(self._next_heartbeat, self._next_poll, self._flush_at)
        if self._next_due is not None:
            wake = min(wake, self._clock.to_trio(self._next_due))
        self._ticker.at(wake)

    async def _chores(self, now: float) -> None:
        """Flush outcomes, promote due tasks, renew leases, poll: whatever has come due."""
        if (self._outcomes or self._releases) and now >= self._flush_at:
            await self._flush()
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
        ids = tuple(self._handed) + tuple(entry[3].id for entry in self._buffer)
        if not ids:
            return
        await self._flush()  # starts first: a lease is renewed for what the store holds
        lease_until = self._clock.now() + self._config.lease
        held = await self._store.ask(Heartbeat(ids, self._config.owner, lease_until))
        for task_id in ids:
            if task_id in held:
                continue
            handed = self._handed.get(task_id)
            if handed is not None:
                attempt = handed.task.attempt + 1
                _tell_worker(handed, CancelTask(task_id, attempt, "the task's lease was lost"))
            else:
                self._cancel(task_id)  # still in the buffer: drop it

    def _workers(self) -> tuple[WorkerInfo, ...]:
        names = set(self._done) | set(self._by_worker) | set(self._waiting)
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
