"""The runtime facade: builds the actor tree and offers ``submit``, ``get``, ``wait``, ..."""

from __future__ import annotations

import builtins
import json
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
import trio

from .. import tracing
from .._time import Clock, parse_iso
from ..actors import (
    ActorSnapshot,
    AddChild,
    ChildSpec,
    Ref,
    RemoveChild,
    Strategy,
    Supervisor,
    WhichChildren,
)
from ..app import App
from ..errors import (
    ConfigurationError,
    ScheduleNotFound,
    TaskNotFound,
    ValidationError,
    WaitTimeout,
)
from ..lifecycle import TERMINAL, Task, TaskEvent, TaskStatus, Transition
from ..observability.logs import log_transitions
from ..scheduling.actor import (
    CreateSchedule,
    RemoveSchedule,
    RunNow,
    SchedulerActor,
    UpdateSchedule,
)
from ..scheduling.define import FIELDS, define
from ..scheduling.model import Schedule
from ..stores import open_store, redact
from ..stores.base import Counts, NewTask, Page, Store, Submitted, TaskFilter
from .catalog import CatalogRegistry, TaskTypes
from .janitor import Janitor, Retention
from .messages import (
    Cancel,
    CancelRunning,
    Drain,
    Events,
    Get,
    GetCounts,
    GetSchedule,
    ListSchedules,
    ListTasks,
    Ping,
    Purge,
    QueueInfo,
    ReleaseAll,
    Requeue,
    Submit,
    SubscribeEvents,
    WaitFor,
    WaitIdle,
    WorkerInfo,
)
from .queue_actor import QueueActor, QueueConfig
from .store_actor import Audience, StoreActor
from .worker import Worker

log = structlog.get_logger("trellis.runtime")

#: Tasks one claim takes while the work is fast, by store URL scheme. A durable store pays
#: per transaction (a commit, round trips), so quick tasks are claimed in big batches;
#: slow ones are not (they would sit under this node's lease, out of other nodes' reach).
_FAST_CLAIM_BATCH = {"sqlite": 256, "postgresql": 256, "postgres": 256}

#: Fields a submission may carry, besides ``type`` and ``payload``.
SUBMIT_FIELDS = frozenset(
    {"queue", "priority", "delay", "run_at", "max_attempts", "timeout", "idempotency_key"}
)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """How a runtime runs. Times are in seconds."""

    workers: int = 8
    grace_period: float = 10.0
    lease: float = 30.0
    # Tasks one claim takes. Default: 2 x workers, at least 32; on SQLite and PostgreSQL,
    # 256 while every task type seen is fast (see _FAST_CLAIM_BATCH).
    claim_batch: int | None = None
    prefetch: int = 16  # most fast tasks a worker takes at once (about 10 ms of work)
    poll_interval: float = 1.0
    queues: tuple[str, ...] | None = None  # None: work every queue
    node: str | None = None  # lease owner; default host:pid:random
    janitor_interval: float = 5.0
    retention: Retention = field(default_factory=Retention)
    worker_idle_timeout: float | None = None
    log_transitions: bool = False  # one debug line per transition, besides failures

    def __post_init__(self) -> None:
        if self.prefetch < 1:
            raise ConfigurationError("prefetch must be >= 1")
        if self.workers < 0:
            raise ConfigurationError("workers must be >= 0")
        if self.grace_period < 0 or self.lease <= 0 or self.poll_interval <= 0:
            raise ConfigurationError("grace_period must be >= 0; lease and poll_interval > 0")


class EventStream:
    """Lifecycle transitions, one at a time, as the store actor publishes them."""

    def __init__(self, receive: trio.MemoryReceiveChannel[tuple[Transition, ...]]) -> None:
        self._receive = receive
        self._pending: list[Transition] = []

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Transition:
        while not self._pending:
            try:
                self._pending = list(await self._receive.receive())
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
        return self._pending.pop(0)

    async def batches(self) -> AsyncIterator[tuple[Transition, ...]]:
        """The raw batches (one per store commit), for consumers that aggregate."""
        async for batch in self._receive:
            yield batch


class Runtime:
    """A running Trellis: the actor tree plus a facade that reaches it through refs."""

    def __init__(
        self, app: App | None = None, *, store: str | Store = "memory://", **config: Any
    ) -> None:
        self.app = app if app is not None else App()
        self.config = RuntimeConfig(**config)
        for definition in self.app.schedules:
            if definition.task_type not in self.app:
                raise ConfigurationError(
                    f"schedule {definition.name!r} is for task type {definition.task_type!r}, "
                    "which is not registered; register it with @app.task first"
                )
        self._store = open_store(store) if isinstance(store, str) else store
        self.node = (
            self.config.node or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._root: Supervisor | None = None
        self._draining = False
        self._worker_seq = 0
        self._clock: Clock | None = None
        self._audience = Audience()
        self._audience.observers.append(self._log_transitions)

    @property
    def store_url(self) -> str:
        return self._store.url

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def running(self) -> bool:
        return self._root is not None and not self._stopped.is_set()

    # -- running -------------------------------------------------------------------------
    def _build(self, clock: Clock) -> Supervisor:
        config = self.config
        limits = {t.name: t.concurrency for t in self.app if t.concurrency is not None}
        registry = ChildSpec("registry", lambda: CatalogRegistry(self.app), mailbox_size=math.inf)
        audience = self._audience  # it outlives a crash of the store actor
        store_spec = ChildSpec(
            "store",
            lambda: StoreActor(self._store, clock, queue_spec.ref, audience),
            mailbox_size=4096,
            shutdown_timeout=config.grace_period + 5,
        )
        queue_config = QueueConfig(
            owner=self.node,
            queues=config.queues,
            lease=config.lease,
            claim_batch=config.claim_batch or max(32, 2 * config.workers),
            fast_claim_batch=config.claim_batch or _fast_claim_batch(self._store, config.workers),
            prefetch=config.prefetch,
            poll_interval=config.poll_interval,
            concurrency=limits,
        )
        queue_spec = ChildSpec(
            "queue", lambda: QueueActor(store_spec.ref, clock, queue_config), mailbox_size=math.inf
        )
        janitor = ChildSpec(
            "janitor",
            lambda: Janitor(
                store_spec.ref,
                clock,
                interval=config.janitor_interval,
                retention=config.retention,
            ),
        )
        scheduler = ChildSpec(
            "scheduler",
            lambda: SchedulerActor(
                self.app, store_spec.ref, clock, refresh=config.poll_interval * 5
            ),
        )
        self._scheduler = scheduler.ref
        self._refs = (registry.ref, store_spec.ref, queue_spec.ref)
        worker_specs = [self._worker_spec(clock) for _ in range(config.workers)]
        pool = ChildSpec(
            "workers",
            lambda: Supervisor(worker_specs, strategy=Strategy.ONE_FOR_ONE),
            mailbox_size=64,
            shutdown_timeout=config.grace_period + 5,
        )
        self._pool = pool.ref
        return Supervisor(
            [registry, store_spec, queue_spec, janitor, scheduler, pool],
            strategy=Strategy.ONE_FOR_ONE,
            registry=registry.ref,
        )

    def _worker_spec(self, clock: Clock) -> ChildSpec:
        self._worker_seq += 1
        _, store, queue = self._refs
        return ChildSpec(
            f"worker-{self._worker_seq}",
            lambda: Worker(
                self.app,
                owner=self.node,
                queue=queue,
                store=store,
                clock=clock,
                reask=self.config.poll_interval * 30,
            ),
            shutdown_timeout=self.config.grace_period,
            idle_timeout=self.config.worker_idle_timeout,
            mailbox_size=16,
        )

    async def run(
        self, *, task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`shutdown`; start with ``await nursery.start(runtime.run)``."""
        self._clock = Clock()
        await self._store.open()
        try:
            root = self._build(self._clock)
            async with trio.open_nursery() as nursery:
                await nursery.start(root.run)
                self._root = root
                log.info(
                    "runtime started",
                    node=self.node,
                    store=redact(self._store.url),
                    workers=self.config.workers,
                )
                task_status.started(self)
                await self._stop.wait()
                await self._drain()
                root.request_stop()
        finally:
            self._stopped.set()
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self._store.close()
            log.info("runtime stopped", node=self.node)

    def _log_transitions(self, batch: tuple[Transition, ...]) -> None:
        log_transitions(batch, verbose=self.config.log_transitions)

    async def _drain(self) -> None:
        """Stop claiming; let running tasks finish within the grace period; give back the rest."""
        self._draining = True
        _, _, queue = self._refs
        await queue.ask(Drain())
        with trio.move_on_after(self.config.grace_period):
            await queue.ask(WaitIdle(), timeout=None)
            return
        log.warning("grace period over; releasing running tasks", grace=self.config.grace_period)
        await queue.tell(ReleaseAll())
        with trio.move_on_after(5):
            await queue.ask(WaitIdle(), timeout=None)

    def mark_draining(self) -> None:
        """Report not ready from now on (``/readyz`` answers 503) ahead of a shutdown."""
        self._draining = True

    async def shutdown(self) -> None:
        """Drain and stop; returns once everything has stopped."""
        self._stop.set()
        await self._stopped.wait()

    # -- the facade ----------------------------------------------------------------------
    @property
    def _store_ref(self) -> Ref[Any]:
        return self._refs[1]

    def _now(self) -> float:
        assert self._clock is not None, "the runtime is not running"
        return self._clock.now()

    def new_task(
        self, type: str, payload: Any = None, *, parsed_json: bool = False, **fields: Any
    ) -> NewTask:
        """Validate one submission and resolve its defaults; raises ValidationError.

        ``parsed_json``: the payload was just parsed from JSON (with NaN and infinities
        refused), so it need not be encoded once more to prove it is JSON."""
        unknown = fields.keys() - SUBMIT_FIELDS
        if unknown:
            name = sorted(unknown)[0]
            raise ValidationError(f"unknown field {name!r}", field=name)
        if not isinstance(type, str):
            raise ValidationError("type must be a string", field="type")
        task_type = self.app.get(type)
        try:
            if payload is not None and not parsed_json:
                json.dumps(payload, allow_nan=False)  # NaN and Infinity are not JSON
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValidationError(
                f"payload must be JSON-serialisable: {exc}", field="payload"
            ) from None
        queue = fields.get("queue") or task_type.queue
        if not isinstance(queue, str) or not queue or len(queue) > 128:
            raise ValidationError(
                "queue must be a non-empty string of at most 128 characters", field="queue"
            )
        priority = _int(fields.get("priority", 0), "priority")
        max_attempts = fields.get("max_attempts")
        max_attempts = (
            task_type.max_attempts if max_attempts is None else _int(max_attempts, "max_attempts")
        )
        if max_attempts < 1:
            raise ValidationError("max_attempts must be >= 1", field="max_attempts")
        timeout = fields.get("timeout")
        if timeout is not None:
            timeout = _number(timeout, "timeout")
            if timeout <= 0:
                raise ValidationError("timeout must be > 0 seconds", field="timeout")
        run_at = _run_at(fields.get("delay"), fields.get("run_at"), self._now())
        key = fields.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
            raise ValidationError(
                "idempotency_key must be a non-empty string of at most 255 characters",
                field="idempotency_key",
            )
        return NewTask(
            type=type,
            payload=payload,
            queue=queue,
            priority=priority,
            run_at=run_at,
            max_attempts=max_attempts,
            timeout=timeout,
            idempotency_key=key,
            dead_letter=task_type.dead_letter,
        )

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[Submitted]:
        """Store validated tasks in one commit; tells which were created."""
        if not tasks:
            return []
        if not tracing.enabled():
            return await self._store_ref.ask(Submit(tuple(tasks)))
        with tracing.span(
            "trellis.enqueue", kind="producer", attributes={"trellis.count": len(tasks)}
        ):
            carrier = tracing.inject()
            traced = tuple(replace(task, trace_context=carrier) for task in tasks)
            return await self._store_ref.ask(Submit(traced))

    async def submit(self, type: str, payload: Any = None, **fields: Any) -> Task:
        """Submit one task (see :data:`SUBMIT_FIELDS`); an idempotency-key repeat returns
        the existing task."""
        (submitted,) = await self.enqueue([self.new_task(type, payload, **fields)])
        return submitted.task

    async def submit_many(self, items: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Submit many tasks in one commit: each item is ``{"type", "payload", ...}``.
        All are validated first; nothing is stored if any is invalid."""
        tasks = []
        for index, item in enumerate(items):
            fields = dict(item)
            try:
                task_type = fields.pop("type")
            except KeyError:
                raise ValidationError(
                    f"item {index} has no type", field=f"[{index}].type"
                ) from None
            payload = fields.pop("payload", None)
            try:
                tasks.append(self.new_task(task_type, payload, **fields))
            except ValidationError as exc:
                raise ValidationError(
                    f"item {index}: {exc}", field=f"[{index}].{exc.field}"
                ) from None
        return [s.task for s in await self.enqueue(tasks)]

    async def get(self, task_id: str) -> Task:
        task = await self._store_ref.ask(Get(task_id))
        if task is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return task

    async def list(
        self,
        *,
        status: TaskStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        if not 1 <= limit <= 1000:
            raise ValidationError("limit must be between 1 and 1000", field="limit")
        try:
            wanted = None if status is None else TaskStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in TaskStatus)
            raise ValidationError(
                f"unknown status {status!r}; known: {known}", field="status"
            ) from None
        return await self._store_ref.ask(ListTasks(TaskFilter(wanted, type, queue), limit, cursor))

    async def events(self, task_id: str) -> builtins.list[TaskEvent]:
        events = await self._store_ref.ask(Events(task_id))
        if not events:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return events

    async def cancel(self, task_id: str) -> Task:
        """Cancel a pending, queued, retrying or running task (a running handler is
        cancelled). Raises InvalidTransition for a finished task."""
        move = await self._store_ref.ask(Cancel(task_id))
        if move.event.from_status is TaskStatus.RUNNING:
            await self._refs[2].tell(CancelRunning(task_id))
        return move.task

    async def requeue(self, task_id: str) -> Task:
        """Send a dead task back to the queue with its attempts starting again."""
        return (await self._store_ref.ask(Requeue(task_id))).task

    async def purge(self, task_ids: Sequence[str]) -> int:
        """Delete dead tasks (others are left alone) with their history; returns how many."""
        return await self._store_ref.ask(Purge(tuple(task_ids)))

    async def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """Return the task once it has ended (completed, failed, dead or cancelled)."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                # Ask again now and then: another node may finish the task.
                with trio.move_on_after(self.config.poll_interval * 5):
                    return await self._store_ref.ask(WaitFor(task_id), timeout=None)
                task = await self.get(task_id)
                if task.status in TERMINAL:
                    return task
        raise WaitTimeout(f"task {task_id} did not finish within {timeout}s")

    async def counts(self) -> Counts:
        return await self._store_ref.ask(GetCounts())

    async def workers(self) -> tuple[WorkerInfo, ...]:
        return await self._refs[2].ask(QueueInfo())

    async def task_types(self) -> tuple[Any, ...]:
        return await self._refs[0].ask(TaskTypes())

    async def stats(self) -> dict[str, Any]:
        counts = await self.counts()
        workers = await self.workers()
        return {
            "node": self.node,
            "store": redact(self._store.url),
            "draining": self._draining,
            "queues": counts.by_queue,
            "workers": {
                "configured": await self.worker_count(),
                "busy": sum(1 for w in workers if w.current_task is not None),
                "tasks_done": sum(w.tasks_done for w in workers),
            },
        }

    async def ping(self) -> bool:
        """True when the store answers within a second."""
        with trio.move_on_after(1.0):
            return await self._store_ref.ask(Ping(), timeout=None)
        return False

    @contextmanager
    def observe(self, observer: Callable[[tuple[Transition, ...]], None]) -> Iterator[None]:
        """Within the block, call ``observer(batch)`` with every batch of transitions.

        It is called inside the store actor, as the batch is published: for quick,
        synchronous bookkeeping (metrics, counters, log lines) that must not wait or fail
        (an exception is logged and ignored). It costs no task switch per batch, where a
        :meth:`subscribe` stream costs one. Anything slower belongs in a subscription.
        """
        self._audience.observers.append(observer)
        try:
            yield
        finally:
            self._audience.observers.remove(observer)

    @asynccontextmanager
    async def subscribe(self, buffer: int = 10_000) -> AsyncIterator[EventStream]:
        """``async with rt.subscribe() as events: async for transition in events: ...``"""
        send, receive = trio.open_memory_channel[tuple[Transition, ...]](buffer)
        await self._store_ref.ask(SubscribeEvents(send))
        try:
            yield EventStream(receive)
        finally:
            send.close()
            receive.close()

    # -- schedules -------------------------------------------------------------------
    async def add_schedule(
        self, name: str, task_type: str, payload: Any = None, **spec: Any
    ) -> Schedule:
        """Create a schedule: ``every=``, ``cron=`` (with ``timezone=``) or ``at=``, and
        optionally ``queue``, ``priority``, ``misfire`` ("skip" or "run_once"), ``paused``."""
        unknown = set(spec) - FIELDS
        if unknown:
            field_name = sorted(unknown)[0]
            raise ValidationError(f"unknown field {field_name!r}", field=field_name)
        definition = define(name, task_type, payload, **spec)
        self.app.get(definition.task_type)
        return await self._scheduler.ask(CreateSchedule(definition))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        return await self._scheduler.ask(UpdateSchedule(schedule_id, changes))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self.update_schedule(schedule_id, paused=True)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self.update_schedule(schedule_id, paused=False)

    async def delete_schedule(self, schedule_id: str) -> None:
        if not await self._scheduler.ask(RemoveSchedule(schedule_id)):
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")

    async def get_schedule(self, schedule_id: str) -> Schedule:
        schedule = await self._store_ref.ask(GetSchedule(schedule_id))
        if schedule is None:
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        return schedule

    async def list_schedules(self) -> builtins.list[Schedule]:
        return await self._store_ref.ask(ListSchedules())

    async def run_schedule(self, schedule_id: str) -> Task:
        """Fire a schedule now, outside its slots."""
        return await self._scheduler.ask(RunNow(schedule_id))

    def snapshot(self) -> ActorSnapshot:
        """The live supervision tree."""
        if self._root is None:
            raise ConfigurationError("the runtime is not running")
        return self._root.snapshot()

    async def worker_count(self) -> int:
        names: tuple[str, ...] = await self._pool.ask(WhichChildren())
        return len(names)

    async def resize(self, workers: int) -> int:
        """Grow or shrink the worker pool; shrinking lets busy workers finish first."""
        if workers < 0:
            raise ValidationError("workers must be >= 0", field="workers")
        assert self._clock is not None
        names: tuple[str, ...] = await self._pool.ask(WhichChildren())
        for _ in range(workers - len(names)):
            await self._pool.ask(AddChild(self._worker_spec(self._clock)))
        for name in reversed(names[workers:]):
            await self._pool.ask(RemoveChild(name), timeout=None)
        return workers


def _fast_claim_batch(store: Store, workers: int) -> int | None:
    scheme, sep, _ = store.url.partition("://")
    batch = _FAST_CLAIM_BATCH.get(scheme.lower() if sep else "postgresql")  # or host=…
    return None if batch is None else max(batch, 2 * workers)


def _int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field} must be an integer", field=field)
    return value


def _number(value: Any, field: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValidationError(f"{field} must be a finite number", field=field)
    return float(value)


def _run_at(delay: Any, run_at: Any, now: float) -> float | None:
    if delay is not None and run_at is not None:
        raise ValidationError("give delay or run_at, not both", field="delay")
    if delay is not None:
        seconds = _number(delay, "delay")
        if seconds < 0:
            raise ValidationError("delay must be >= 0 seconds", field="delay")
        return now + seconds if seconds else None
    if run_at is None:
        return None
    if isinstance(run_at, int | float) and not isinstance(run_at, bool):
        return float(run_at)
    if isinstance(run_at, str):
        try:
            return parse_iso(run_at)
        except ValueError:
            raise ValidationError("run_at must be an ISO 8601 date-time", field="run_at") from None
    raise ValidationError("run_at must be an ISO 8601 date-time", field="run_at")


@asynccontextmanager
async def open_runtime(
    app: App | None = None, *, store: str | Store = "memory://", **config: Any
) -> AsyncIterator[Runtime]:
    """Run Trellis inside any trio program::

        async with trellis_actors.open_runtime(app, store="sqlite:///trellis.db") as rt:
            task = await rt.submit("echo", {"hello": "world"})
            done = await rt.wait(task.id)

    Leaving the block drains: no new work is claimed, running tasks get the grace period
    to finish, and the rest are released to run again later.
    """
    runtime = Runtime(app, store=store, **config)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        try:
            yield runtime
        finally:
            with trio.CancelScope(shield=True):
                await runtime.shutdown()
