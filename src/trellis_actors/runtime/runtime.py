"""The runtime facade: runs the actor tree and offers ``submit``, ``get``, ``wait``, ..."""

from __future__ import annotations

import builtins
import math
import multiprocessing
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from typing import Any, overload

import sniffio
import structlog
import trio
from typing_extensions import Unpack

from .. import rules, tracing
from .._time import Clock
from ..actors import ActorSnapshot, AddChild, Ref, RemoveChild, Supervisor, WhichChildren
from ..app import App
from ..contracts import P, R, TaskHandle, task_name
from ..decisions import Bulk, QueueState
from ..errors import (
    ConfigurationError,
    RuntimeNotRunning,
    ScheduleNotFound,
    TaskNotFound,
    TrellisError,
    ValidationError,
    WaitTimeout,
)
from ..lifecycle import TERMINAL, Task, TaskEvent, TaskStatus, Transition
from ..rules import FilterFields, SubmitOptions
from ..scheduling.define import FIELDS, define
from ..scheduling.model import Schedule
from ..stores import open_store, redact
from ..stores.base import Counts, Finished, NewTask, Page, Store, Submitted, TaskFilter
from ..stores.nodes import NodeInfo
from ..workflows import NotAWorkflow, WorkflowState
from .bulk import run_bulk
from .catalog import TaskTypes
from .config import RuntimeConfig as RuntimeConfig
from .events import DEFAULT_BUFFER, FOLLOW_BUFFER
from .events import EventStream as EventStream
from .events import FeedStream as FeedStream
from .logs import TaskLog
from .messages import (
    Cancel,
    CancelRunning,
    CreateSchedule,
    Drain,
    Events,
    FeedBatch,
    FinishedSince,
    Follow,
    Get,
    GetCounts,
    GetSchedule,
    ListQueues,
    ListSchedules,
    ListTasks,
    LoadWorkflow,
    PauseQueue,
    Ping,
    Published,
    Purge,
    QueueInfo,
    ReleaseAll,
    RemoveSchedule,
    Requeue,
    RunNow,
    Signal,
    StoreMsg,
    Submit,
    SubscribeEvents,
    UpdateSchedule,
    WaitFor,
    WaitIdle,
    WorkerInfo,
)
from .node_messages import CheckResult, Draining, ListNodes, Readiness
from .session_messages import SessionMsg
from .store_actor import Audience
from .wiring import ActorTree, Wiring

log = structlog.get_logger("trellis.runtime")

#: How long a drain waits for cancelled handlers to hand their tasks back.
RELEASE_TIMEOUT = 5.0

#: Fields a submission may carry, besides ``type`` and ``payload``.
SUBMIT_FIELDS = rules.SUBMIT_FIELDS


class Runtime:
    """A running Trellis: the actor tree plus a facade that reaches it through refs.

    The tree (:attr:`tree`) is built with the runtime, so its refs exist at once; the
    actors run between ``await nursery.start(runtime.run)`` and :meth:`shutdown`. Calling
    the facade outside that raises :class:`~trellis_actors.errors.RuntimeNotRunning`.
    """

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
        self._hurry = trio.Event()
        self._idle = False
        self._root: Supervisor | None = None
        self._draining = False
        self._clock: Clock | None = None
        self._audience = Audience()
        self._audience.observers.append(
            TaskLog(
                self.node,
                tasks=self.config.log_tasks,
                verbose=self.config.log_transitions,
                ran_by=self._audience.ran_by,
            )
        )
        self._wiring = Wiring(
            self.app, self._store, self.config, self.node, self._audience, self._running_clock
        )
        #: The actors by role: ``tree.store``, ``tree.queue``, …
        self.tree: ActorTree = self._wiring.tree
        #: The threads of ``def`` handlers, and the watch for a blocked event loop.
        self.threads = self._wiring.threads
        self.loop_watch = self._wiring.loop_watch
        self.loop_watch.watch(
            {
                code: t.name
                for t in self.app
                if t.executor == "async"
                and (code := getattr(t.handler, "__code__", None)) is not None
            }
        )

    @property
    def store_url(self) -> str:
        return self._store.url

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def running(self) -> bool:
        return self._root is not None and not self._stopped.is_set()

    def _running_clock(self) -> Clock:
        if self._clock is None:
            raise RuntimeNotRunning(_NOT_RUNNING)
        return self._clock

    def _live(self) -> ActorTree:
        """The tree, once the runtime runs: the facade's way to every actor."""
        if not self.running:
            raise RuntimeNotRunning(_NOT_RUNNING)
        return self.tree

    # -- running -------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`shutdown`; start with ``await nursery.start(runtime.run)``."""
        _require_trio()
        _refuse_in_a_starting_process()
        if self._clock is not None:
            raise ConfigurationError("a runtime runs once; make a new one to run again")
        self._clock = Clock()
        await self._store.open()
        try:
            root = self._wiring.root()
            with self.loop_watch.running():
                await self._run_tree(root, task_status)
        finally:
            self._stopped.set()
            self._wiring.followers.close()  # every follow() stream ends
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self._store.close()
            log.info("runtime stopped", node=self.node)

    async def _run_tree(self, root: Supervisor, task_status: trio.TaskStatus[Runtime]) -> None:
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

    async def _drain(self) -> None:
        """Stop claiming; let running tasks finish within the grace period; give back the rest."""
        self.mark_draining()
        queue = self.tree.queue
        await queue.ask(Drain())
        async with trio.open_nursery() as race:

            async def idle() -> None:
                await queue.ask(WaitIdle(), timeout=None)
                self._idle = True
                race.cancel_scope.cancel()

            async def hurried() -> None:
                await self._hurry.wait()
                race.cancel_scope.cancel()

            race.cancel_scope.deadline = trio.current_time() + self.config.grace_period
            race.start_soon(idle)
            race.start_soon(hurried)
        if self._idle:
            return
        log.warning(
            "releasing running tasks",
            why="hurried" if self._hurry.is_set() else "grace period over",
            grace=self.config.grace_period,
        )
        await queue.tell(ReleaseAll())
        with trio.move_on_after(RELEASE_TIMEOUT):
            await queue.ask(WaitIdle(), timeout=None)

    def mark_draining(self) -> None:
        """Report not ready from now on (``/readyz`` answers 503) ahead of a shutdown."""
        if not self._draining and self.running:
            with suppress(TrellisError):  # its row says so at once, or at its last beat
                self.tree.node.tell_nowait(Draining())
        self._draining = True

    async def shutdown(self) -> None:
        """Drain and stop; returns once everything has stopped."""
        self._stop.set()
        await self._stopped.wait()

    def hurry(self) -> None:
        """End the grace period now (a second signal): running handlers are cancelled and
        their tasks given back; every outcome already reached is still committed before
        the runtime stops, within a bounded time."""
        self._hurry.set()
        self._stop.set()

    # -- the facade ----------------------------------------------------------------------
    @property
    def _store_ref(self) -> Ref[StoreMsg]:
        return self._live().store

    def _now(self) -> float:
        return self._running_clock().now()

    async def session(self, msg: SessionMsg) -> Any:
        """Keep or read a web UI login session, through the store actor (the UI's own
        :mod:`trellis_actors.ui._sessions` says what the answers mean)."""
        return await self._store_ref.ask(msg)

    def new_task(
        self, type: str | TaskHandle[Any, Any], payload: Any = None, /, **fields: Any
    ) -> NewTask:
        """Validate one submission and resolve its defaults; raises ValidationError.
        The rules are :func:`trellis_actors.rules.new_task`'s."""
        return rules.new_task(self.app, type, payload, self._now(), **fields)

    async def enqueue(self, tasks: Sequence[NewTask]) -> list[Submitted]:
        """Store validated tasks in one commit; tells which were created."""
        if not tasks:
            return []
        if not tracing.enabled():
            return await self._store_ref.ask(Submit(tuple(tasks)))
        attributes = tracing.messaging("send", [task.queue for task in tasks])
        attributes["trellis.count"] = len(tasks)
        with tracing.span("trellis.enqueue", kind="producer", attributes=attributes) as span:
            carrier = tracing.inject()
            traced = tuple(replace(task, trace_context=carrier) for task in tasks)
            submitted = await self._store_ref.ask(Submit(traced))
            if len(submitted) == 1 and span is not None:
                span.set_attribute("messaging.message.id", submitted[0].task.id)
            return submitted

    @overload
    async def submit(
        self, task: TaskHandle[P, R], payload: P, /, **options: Unpack[SubmitOptions]
    ) -> Task[R]: ...
    @overload
    async def submit(
        self, task: str, payload: Any = None, /, **options: Unpack[SubmitOptions]
    ) -> Task[Any]: ...
    async def submit(
        self,
        task: TaskHandle[Any, Any] | str,
        payload: Any = None,
        /,
        **options: Unpack[SubmitOptions],
    ) -> Task[Any]:
        """Submit one task of a type (a handle from ``@app.task``, or its name) with its
        payload and :class:`~trellis_actors.rules.SubmitOptions`; an idempotency-key
        repeat returns the existing task. The payload is checked against the type's
        contract: ValidationError names the field."""
        (submitted,) = await self.enqueue([self.new_task(task, payload, **options)])
        return submitted.task

    async def submit_many(self, items: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Submit many tasks in one commit: each item is ``{"type", "payload", ...}``.
        All are validated first; nothing is stored if any is invalid."""
        tasks = rules.new_tasks(self.app, items, now=self._now())
        return [s.task for s in await self.enqueue(tasks)]

    async def get(self, task_id: str) -> Task:
        task = await self._store_ref.ask(Get(rules.check_task_id(task_id)))
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
        include: Iterable[str] | str | None = ("payload", "result"),
        max_bytes: int | None = None,
        id_prefix: str | None = None,
        idempotency_key: str | None = None,
        schedule_id: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        oldest_first: bool = False,
    ) -> Page:
        """A page of tasks, newest first (with ``oldest_first``, oldest first); pass
        ``next_cursor`` back as ``cursor`` for the next page in the same order.

        ``include`` names what each task carries besides its summary: ``payload`` and
        ``result`` (both by default). A listing without them (``include=()``) does not
        read them from the store. ``max_bytes`` caps the included data of a page (one
        task at least); a page that stops there has a ``next_cursor``.

        Every filter given must match: ``id_prefix`` is the start of a task id;
        ``created_after`` (inclusive) and ``created_before`` (exclusive) are seconds since
        the epoch.
        """
        wanted = rules.check_listing(
            status=status,
            type=type,
            queue=queue,
            limit=limit,
            cursor=cursor,
            id_prefix=id_prefix,
            idempotency_key=idempotency_key,
            schedule_id=schedule_id,
            created_after=created_after,
            created_before=created_before,
        )
        filter = TaskFilter(
            wanted,
            type,
            queue,
            id_prefix=id_prefix,
            idempotency_key=idempotency_key,
            schedule_id=schedule_id,
            created_after=created_after,
            created_before=created_before,
            oldest_first=bool(oldest_first),
        )
        fields = rules.check_include(include)
        if max_bytes is not None:
            rules.check_int(max_bytes, "max_bytes", 1)
        return await self._store_ref.ask(ListTasks(filter, limit, cursor, fields, max_bytes))

    async def events(self, task_id: str) -> builtins.list[TaskEvent]:
        events = await self._store_ref.ask(Events(rules.check_task_id(task_id)))
        if not events:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return events

    async def cancel(self, task_id: str) -> Task:
        """Cancel a pending, queued, retrying, running or waiting task (a running handler is
        cancelled). Raises InvalidTransition for a finished task."""
        moves = await self._store_ref.ask(Cancel(rules.check_task_id(task_id)))
        for task, event in moves:  # the task's move, then its steps' (of a workflow)
            if event.to_status is TaskStatus.CANCELLED and event.from_status in (
                TaskStatus.RUNNING,
                TaskStatus.QUEUED,
            ):
                # This node's queue may hold it, claimed or running: it stops the handler
                # or drops the task. (Another node's queue finds out at its next lease
                # renewal.)
                await self.tree.queue.tell(CancelRunning(task.id))
        return moves[0].task

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send a workflow the signal ``name`` with ``payload`` (JSON): it is kept until
        the workflow waits for it (``wf.wait_signal(name)``), and signals of one name are
        received in the order sent, each once. Raises TaskNotFound, NotAWorkflow for a
        task that is not a workflow, WorkflowEnded once it has ended."""
        workflow_id = rules.check_task_id(workflow_id)
        name = rules.check_signal_name(name)
        rules.check_json(payload, "payload")
        task = await self.get(workflow_id)
        if task is None:
            raise TaskNotFound(f"no task with id {workflow_id!r}")
        if not self._is_workflow(task.type):
            raise NotAWorkflow(f"task {workflow_id} is a {task.type!r} task, not a workflow")
        await self._store_ref.ask(Signal(workflow_id, name, payload))

    async def workflow(self, workflow_id: str) -> WorkflowState:
        """A workflow with its history (steps, sleeps with their wake times, signal waits
        and their outcomes, recorded values), the signals sent to it and its steps'
        tasks. Raises TaskNotFound, or NotAWorkflow for a task that is not a workflow."""
        workflow_id = rules.check_task_id(workflow_id)
        state = await self._store_ref.ask(LoadWorkflow(workflow_id))
        if state is None:
            raise TaskNotFound(f"no task with id {workflow_id!r}")
        if not self._is_workflow(state.task.type):
            raise NotAWorkflow(f"task {workflow_id} is a {state.task.type!r} task, not a workflow")
        return state

    def _is_workflow(self, type: str) -> bool:
        return type in self.app and self.app.get(type).workflow

    async def requeue(self, task_id: str) -> Task:
        """Send a dead task back to the queue with its attempts starting again."""
        return (await self._store_ref.ask(Requeue(rules.check_task_id(task_id)))).task

    async def purge(self, task_ids: Sequence[str]) -> int:
        """Delete dead tasks (others are left alone) with their history; returns how many."""
        return await self._store_ref.ask(Purge(tuple(filter(rules.possible_id, task_ids))))

    async def cancel_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Cancel every task still on its way that ``filter`` selects (see
        :func:`~trellis_actors.rules.check_filter`); running handlers are stopped, here at
        once and on other nodes at their next lease renewal. Returns how many were
        cancelled; with ``dry_run``, how many would be, cancelling none."""
        return await self._bulk(Bulk.CANCEL, filter, dry_run)

    async def requeue_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Send every dead task ``filter`` selects back to the queue, attempts starting
        again; returns how many (with ``dry_run``, how many would go)."""
        return await self._bulk(Bulk.REQUEUE, filter, dry_run)

    async def purge_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Delete every ended task (completed, failed, dead, cancelled) ``filter`` selects,
        with its history; returns how many (with ``dry_run``, how many would go)."""
        return await self._bulk(Bulk.PURGE, filter, dry_run)

    async def bulk(
        self, action: Bulk, *, dry_run: bool = False, **filter: Unpack[FilterFields]
    ) -> int:
        """``action`` (cancel, requeue or purge) on every task ``filter`` selects: one entry
        for callers that choose the action at run time (the API's and the UI's bulk routes)."""
        return await self._bulk(action, filter, dry_run)

    async def _bulk(self, action: Bulk, filter: Mapping[str, Any], dry_run: bool) -> int:
        selection = rules.check_filter(action, filter)
        return await run_bulk(
            self._store_ref, self.tree.queue, action, selection, dry_run=bool(dry_run)
        )

    @overload
    async def wait(self, task: Task[R], timeout: float | None = None) -> Task[R]: ...
    @overload
    async def wait(self, task: str, timeout: float | None = None) -> Task[Any]: ...
    async def wait(self, task: Task[Any] | str, timeout: float | None = None) -> Task[Any]:
        """Return the task once it has ended (completed, failed, dead or cancelled).

        Given a task (as ``submit`` returned it) rather than an id, the result is parsed
        by the type's result contract: ``Task[R]`` with ``result`` an ``R``."""
        if isinstance(task, str):
            return await self._wait(task, timeout)
        done = await self._wait(task.id, timeout)
        if done.result is not None and task.type in self.app:
            return replace(done, result=self.app.get(task.type).contract.read(done.result))
        return done

    async def _wait(self, task_id: str, timeout: float | None) -> Task:
        rules.check_task_id(task_id)
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

    async def finished_since(self, since: float, limit: int = 20_000) -> builtins.list[Finished]:
        """Tasks completed or dead since ``since``, the latest first, at most ``limit``."""
        return await self._store_ref.ask(FinishedSince(since, rules.check_int(limit, "limit", 1)))

    async def pause_queue(self, name: str) -> QueueState:
        """Pause ``name`` for every node sharing the store: its tasks stay queued (new ones
        are still accepted) and running ones finish. Pausing a paused queue is no change."""
        return await self._store_ref.ask(PauseQueue(rules.check_text(name, "queue"), True))

    async def resume_queue(self, name: str) -> QueueState:
        """Let every node claim ``name``'s tasks again."""
        return await self._store_ref.ask(PauseQueue(rules.check_text(name, "queue"), False))

    async def queues(self) -> builtins.list[QueueState]:
        """Every queue that holds tasks or was ever paused: its counts and paused flag."""
        return await self._store_ref.ask(ListQueues())

    async def workers(self) -> tuple[WorkerInfo, ...]:
        return await self._live().queue.ask(QueueInfo())

    async def nodes(self) -> builtins.list[NodeInfo]:
        """Every node in the registry (this one included, unless its heartbeat is off),
        each with its state now: ``up``, ``draining`` or ``lost`` (not seen for three of
        its heartbeats; its row is deleted after sixty)."""
        rows = await self._store_ref.ask(ListNodes())
        now = self._now()
        return [row.seen(now) for row in rows]

    async def readiness(self) -> tuple[CheckResult, ...]:
        """The last answer of each of the App's readiness checks (``pending`` before the
        first round)."""
        return await self._live().node.ask(Readiness(), timeout=1.0)

    async def task_types(self) -> tuple[Any, ...]:
        return await self._live().registry.ask(TaskTypes())

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
        """True when the store answers within a second (False when not running)."""
        if not self.running:
            return False
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
    async def subscribe(self, buffer: int = DEFAULT_BUFFER) -> AsyncIterator[EventStream]:
        """``async with rt.subscribe() as events: async for transition in events: ...``

        A subscriber that falls ``buffer`` batches behind (one batch per store commit) is
        dropped: its stream ends, and ``events.dropped`` says why. Subscribe again to go
        on (what happened meanwhile is in the store).
        """
        if buffer < 1:
            raise ValueError("buffer must be at least 1 batch")
        # One slot more than the buffer, for the notice that says why it was dropped.
        send, receive = trio.open_memory_channel[Published](buffer + 1)
        await self._store_ref.ask(SubscribeEvents(send))
        try:
            yield EventStream(receive)
        finally:
            send.close()
            receive.close()

    @asynccontextmanager
    async def follow(
        self, after: int | None = None, buffer: int = FOLLOW_BUFFER
    ) -> AsyncIterator[FeedStream]:
        """``async with rt.follow() as events: async for recorded in events: ...``

        Every node's transitions, as the store recorded them, each with its event id
        (``recorded.id``): those after the event ``after``, or, with None, from now on.
        Follow again after ``events.last_id`` to go on with exactly what came next, none
        twice, none lost (an id pruned since goes on at the oldest event kept after it).
        Events of other nodes arrive within a poll interval. ``buffer`` is how many
        batches may wait unread; a slower reader is not dropped but read for again once
        it has room.
        """
        if buffer < 1:
            raise ValueError("buffer must be at least 1 batch")
        if after is not None:
            after = rules.check_event_id(after)
        send, receive = trio.open_memory_channel[FeedBatch](buffer)
        try:
            start = await self._live().feed.ask(Follow(send, after))
            yield FeedStream(receive, start)
        finally:
            send.close()
            receive.close()

    # -- schedules -------------------------------------------------------------------
    async def add_schedule(
        self, name: str, task_type: str | TaskHandle[Any, Any], payload: Any = None, **spec: Any
    ) -> Schedule:
        """Create a schedule: ``every=``, ``cron=`` (with ``timezone=``) or ``at=``, and
        optionally ``queue``, ``priority``, ``misfire`` ("skip" or "run_once"), ``paused``."""
        unknown = set(spec) - FIELDS
        if unknown:
            field_name = sorted(unknown)[0]
            raise ValidationError(f"unknown field {field_name!r}", field=field_name)
        contract = rules.task_type_of(self.app, task_type).contract
        if contract.payload is not None:
            payload = contract.accept(payload)
        definition = define(name, task_name(task_type), payload, **spec)
        return await self._live().scheduler.ask(CreateSchedule(definition))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        return await self._live().scheduler.ask(
            UpdateSchedule(rules.check_schedule_id(schedule_id), changes)
        )

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self.update_schedule(schedule_id, paused=True)

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self.update_schedule(schedule_id, paused=False)

    async def delete_schedule(self, schedule_id: str) -> None:
        scheduler = self._live().scheduler
        if not await scheduler.ask(RemoveSchedule(rules.check_schedule_id(schedule_id))):
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")

    async def get_schedule(self, schedule_id: str) -> Schedule:
        schedule = await self._store_ref.ask(GetSchedule(rules.check_schedule_id(schedule_id)))
        if schedule is None:
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        return schedule

    async def list_schedules(self) -> builtins.list[Schedule]:
        return await self._store_ref.ask(ListSchedules())

    async def run_schedule(self, schedule_id: str) -> Task:
        """Fire a schedule now, outside its slots."""
        return await self._live().scheduler.ask(RunNow(rules.check_schedule_id(schedule_id)))

    def snapshot(self) -> ActorSnapshot:
        """The live supervision tree."""
        if self._root is None or not self.running:
            raise RuntimeNotRunning(_NOT_RUNNING)
        return self._root.snapshot()

    async def worker_count(self) -> int:
        names: tuple[str, ...] = await self._live().workers.ask(WhichChildren())
        return len(names)

    async def resize(self, workers: int) -> int:
        """Grow or shrink the worker pool; shrinking lets busy workers finish first."""
        if workers < 0:
            raise ValidationError("workers must be >= 0", field="workers")
        pool = self._live().workers
        names: tuple[str, ...] = await pool.ask(WhichChildren())
        for _ in range(workers - len(names)):
            await pool.ask(AddChild(self._wiring.worker_spec()))
        for name in reversed(names[workers:]):
            await pool.ask(RemoveChild(name), timeout=None)
        return workers


_NOT_RUNNING = (
    "the runtime is not running; use `async with open_runtime(app) as rt:` or "
    "`await nursery.start(runtime.run)` first"
)


def _refuse_in_a_starting_process() -> None:
    """Refuse to start in a process that ``multiprocessing`` is still starting: one that
    runs the main module of its parent, as ``spawn`` does (process handlers' workers, and a
    program's own), where a script that starts a runtime when it is run, without an
    ``if __name__ == "__main__":`` guard, would start another runtime in each."""
    # The flag ``multiprocessing`` itself reads to refuse starting a process then (set
    # only while a spawned child prepares; absent elsewhere).
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigurationError(
            "a runtime was started while this process was being started by multiprocessing, "
            "which runs the parent's main module again: put the code that starts the "
            'runtime under `if __name__ == "__main__":` (see docs/processes.md)'
        )


def _require_trio() -> None:
    """Refuse to start under another event loop, pointing to what works there."""
    try:
        library: str | None = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library != "trio":
        raise ConfigurationError(
            f"a Trellis runtime runs inside a trio program, and this is "
            f"{library or 'not an async program'}; from asyncio code (FastAPI, aiohttp, "
            "Django async views) submit with trellis_actors.client.AsyncClient to a "
            "`trellis serve` node, or write tasks in your own database transaction with "
            "trellis_actors.postgres.enqueue or trellis_actors.sqlite.enqueue "
            "(see docs/producers.md)"
        )


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
    _require_trio()
    runtime = Runtime(app, store=store, **config)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        try:
            yield runtime
        finally:
            with trio.CancelScope(shield=True):
                await runtime.shutdown()
