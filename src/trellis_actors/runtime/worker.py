"""A worker actor: says when it is idle, runs the tasks it is assigned, reports to the queue."""

from __future__ import annotations

import json
import math
import traceback
from typing import Any, assert_never

import structlog
import trio

from .. import rules, tracing
from .._time import Clock
from ..actors import Actor, Ref
from ..app import App, Retry, TaskType
from ..context import TaskContext
from ..contracts import ANY_JSON, importable
from ..decisions import Outcome
from ..errors import TaskNotFound, TrellisError, ValidationError
from ..lifecycle import Task, TaskError, TaskStatus
from .messages import (
    Assign,
    CancelTask,
    Late,
    LoadWorkflow,
    QueueMsg,
    Ready,
    Reask,
    ReportProgress,
    Started,
    StoreMsg,
    WorkerMsg,
)
from .processes import CancelRun, PoolMsg, RunInProcess
from .threads import LoopWatch, ThreadPool
from .workflow_runner import replay

log = structlog.get_logger("trellis.worker")

#: In a batch of fast tasks, starts are reported with the outcomes — unless the batch runs
#: this long: then the running task's start is reported at once, and every later one too.
#: (Any other batch reports each start as it happens.)
START_REPORT_AFTER = 0.01
#: Longest error message and traceback stored for a failed attempt.
MAX_ERROR_MESSAGE = 4_000
MAX_TRACEBACK = 32_000


class TaskTimeout(TrellisError, TimeoutError):
    """A handler ran past its task's timeout."""


class Worker(Actor[WorkerMsg]):
    """Runs the tasks it is assigned, one at a time, beside its mailbox.

    Its loop takes ``Assign`` (work), ``CancelTask`` (for one attempt; stale ones are
    ignored) and ``Reask`` (its own timer). The handlers run in :meth:`background`, so a
    cancel reaches a running handler at once. Nothing a handler raises — ``BaseException``
    included — escapes: it fails that attempt. On a stop request the worker finishes the
    task in hand and gives the rest back; past its shutdown timeout it is cancelled, and
    what it held goes back too.
    """

    kind = "worker"
    task_log = log  # handlers' ctx.log binds to it

    def __init__(
        self,
        app: App,
        *,
        owner: str,
        queue: Ref[QueueMsg],
        clock: Clock,
        reask: float = 30.0,
        threads: ThreadPool | None = None,
        loop_watch: LoopWatch | None = None,
        processes: Ref[PoolMsg] | None = None,
        store: Ref[StoreMsg] | None = None,
    ) -> None:
        super().__init__()
        self._store = store  # workflows load their history from it
        self._threads = threads if threads is not None else ThreadPool(1)
        self._loop_watch = loop_watch if loop_watch is not None else LoopWatch(None)
        self._processes = processes
        self._app = app
        self._owner = owner
        self._queue = queue
        self._clock = clock
        self._reask_after = reask
        self._reask = self.timer(Reask)
        self._late = self.timer(Late)
        self._work_send, self._work = trio.open_memory_channel[Assign](math.inf)
        self._in_hand: dict[str, int] = {}  # assigned, not yet reported: id -> attempt
        self._cancelled: dict[str, bool] = {}  # in hand, cancelled before starting: release?
        # The running attempt: (task id, attempt, its cancel scope).
        self._current: tuple[str, int, trio.CancelScope] | None = None
        # Its start, until reported to the queue: (task id, attempt, store time).
        self._unreported: tuple[str, int, float] | None = None
        self._hurry_starts = False  # this batch ran past the budget: report every start
        # Why the current task's scope was cancelled: "cancel", "release" or None (its
        # deadline, or the handler itself).
        self._interrupt: str | None = None
        self._deadline = math.inf
        self._timeout: float | None = None
        self._runner_done = trio.Event()

    # -- the loop ------------------------------------------------------------------------
    async def on_start(self) -> None:
        self._ready()

    async def handle(self, msg: WorkerMsg) -> None:
        match msg:
            case Assign(tasks):
                for task in tasks:
                    self._in_hand[task.id] = task.attempt + 1
                self._work_send.send_nowait(msg)
            case CancelTask(task_id, attempt, _, release):
                current = self._current
                if current is not None and current[:2] == (task_id, attempt):
                    self._interrupt = "release" if release else "cancel"
                    current[2].cancel()
                elif self._in_hand.get(task_id) == attempt:  # still waiting its turn
                    self._cancelled[task_id] = release
                # else: a cancel for another attempt, or a task already reported: stale
            case Reask():
                if not self._in_hand and not self.stop_requested.is_set():
                    self._ready()  # the queue may have restarted and forgotten us
            case Late():
                self._hurry_starts = True
                self._report_start()
            case _:
                assert_never(msg)

    def request_stop(self) -> None:
        if not self.stop_requested.is_set():
            # Ask for no more work now; what comes anyway goes back unstarted.
            self._tell(Ready(self.name, self.incarnation, self.ref, stopping=True))
        super().request_stop()

    async def on_stop(self) -> None:
        """Finish the task in hand; give back the rest, and what is still in the mail."""
        for msg in self.leftovers():
            if isinstance(msg, Assign):
                await self.handle(msg)
        self._work_send.close()
        await self._runner_done.wait()

    def _ready(self, outcomes: tuple[Outcome, ...] = (), released: tuple[str, ...] = ()) -> None:
        stopping = self.stop_requested.is_set()
        self._tell(Ready(self.name, self.incarnation, self.ref, outcomes, released, stopping))
        if not stopping:
            self._reask.after(self._reask_after)

    def _report_start(self) -> None:
        """Tell the queue the running handler started, unless it knows already."""
        if self._unreported is not None:
            task_id, attempt, at = self._unreported
            self._unreported = None
            self._tell(Started(self.name, task_id, attempt, at))

    def _tell(self, msg: QueueMsg) -> None:
        try:
            self._queue.tell_nowait(msg)
        except TrellisError:  # the queue is gone (shutting down): its leases expire
            log.warning("the queue did not take a report", worker=self.name, msg=type(msg).__name__)

    # -- running tasks -------------------------------------------------------------------
    async def background(self, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            async with self._work:
                async for assigned in self._work:
                    tasks = assigned.tasks
                    self.mailbox.busy = True
                    self._hurry_starts = not assigned.fast
                    if assigned.fast:
                        self._late.after(START_REPORT_AFTER)
                    try:
                        outcomes, released = await self._run_batch(tasks)
                    finally:
                        self._late.stop()
                        self.mailbox.busy = False
                        self.alive()
                    for task in tasks:
                        self._in_hand.pop(task.id, None)
                        self._cancelled.pop(task.id, None)
                    self._ready(outcomes, released)
        finally:
            self._runner_done.set()

    async def _run_batch(
        self, tasks: tuple[Task, ...]
    ) -> tuple[tuple[Outcome, ...], tuple[str, ...]]:
        """Run the tasks in hand in order; once stopping, give the unstarted ones back."""
        outcomes: list[Outcome] = []
        released: list[str] = []
        index = 0
        running: Task | None = None  # the task whose handler is running
        try:
            while index < len(tasks):
                # One cancel scope serves a run of tasks (entering one costs more than a
                # no-op task). When it fires, the task it interrupted ends and a fresh
                # scope serves the rest.
                with trio.CancelScope() as scope:
                    while index < len(tasks):
                        task = tasks[index]
                        if self.stop_requested.is_set() or task.id in self._cancelled:
                            if not self.stop_requested.is_set():
                                released.append(task.id)  # cancelled before it started
                                index += 1
                                continue
                            released += [t.id for t in tasks[index:]]
                            return tuple(outcomes), tuple(released)
                        running = task
                        outcomes.append(await self._attempt(task, scope))
                        running = None
                        index += 1
                if not scope.cancelled_caught:
                    break
                task = tasks[index]  # the task the scope interrupted
                index += 1
                running = None
                attempt = task.attempt + 1
                if self._interrupt == "release":
                    released.append(task.id)
                elif self._interrupt is None and trio.current_time() >= self._deadline:
                    timeout = TaskTimeout(f"ran past its {self._timeout}s timeout")
                    outcomes.append(self._failed(task, self._app.get(task.type), timeout))
                else:
                    outcomes.append(self._outcome(task, attempt, TaskStatus.CANCELLED))
        except trio.Cancelled:
            # Cancelled from outside: stopping past the shutdown timeout (every task in
            # hand goes back), or the supervisor stopped us as hung or crashed (the task
            # that was running counts as an attempt, so a task that always hangs cannot
            # take workers down for ever). Reported at once: this incarnation is ending.
            rest = tasks[index:]
            if running is not None:
                rest = tasks[index + 1 :]
                if self.stop_requested.is_set():
                    released.append(running.id)
                else:
                    crash = TaskError(
                        "WorkerCrashed", f"{self.name} crashed while running the task"
                    )
                    outcomes.append(self._failed(running, self._app.get(running.type), crash))
            released += [t.id for t in rest]
            self._tell(
                Ready(self.name, self.incarnation, self.ref, tuple(outcomes), tuple(released), True)
            )
            raise
        finally:
            self._current = None
        return tuple(outcomes), tuple(released)

    async def _attempt(self, task: Task, scope: trio.CancelScope) -> Outcome:
        """Run the handler once under ``scope``, turning what it raises into an outcome
        that says when it started and how long it took."""
        self.alive()
        began = self.mailbox.last_alive  # now
        started_at = self._clock.now()
        attempt = task.attempt + 1
        self._unreported = (task.id, attempt, started_at)
        if self._hurry_starts:
            self._report_start()
        try:
            outcome = await self._handle(task, attempt, scope)
        finally:
            self._unreported = None
        outcome.seconds = trio.current_time() - began
        outcome.started_at = started_at
        return outcome

    async def _handle(self, task: Task, attempt: int, scope: trio.CancelScope) -> Outcome:
        if task.type not in self._app:
            error = TaskError("UnknownTaskType", f"no handler is registered for {task.type!r}")
            return self._outcome(task, attempt, TaskStatus.FAILED, error=error)
        task_type = self._app.get(task.type)
        ctx = TaskContext(
            task_id=task.id,
            type=task.type,
            attempt=attempt,
            cancel_scope=scope,
            host=self,
            threaded=task_type.executor == "thread",
        )
        timeout = effective_timeout(task.timeout, task_type.timeout, task_type.max_duration)
        self._timeout = timeout
        self._deadline = math.inf if timeout is None else trio.current_time() + timeout
        if timeout is not None:
            scope.deadline = self._deadline
        self._interrupt = None
        self._current = (task.id, attempt, scope)
        contract = task_type.contract
        try:
            if task_type.workflow:
                return await self._continue(task, attempt, task_type)
            if task.trace_context is not None:
                result = await self._traced(task, attempt, task_type, ctx)
            elif task_type.executor == "async" and contract is ANY_JSON:  # the hot path
                self._loop_watch.current = task.type  # who blocks the loop, if one does
                result = await task_type.handler(ctx, task.payload)
            else:
                result = await self._call(task, attempt, task_type, ctx)
            if contract.result is not None and task_type.executor != "process":
                result = contract.give(result)  # a pool process gives its own
        except trio.Cancelled:
            ctx._cancelled = True  # a thread handler finds out through ctx.cancelled()
            raise  # our scope (timeout, cancel) or from outside: the callers decide
        except _PoolFailure as failure:
            return self._failed(task, task_type, failure.error)
        except BaseException as exc:
            return self._failed(task, task_type, exc)
        finally:
            self._current = None
            self._loop_watch.current = None
            if timeout is not None:
                scope.deadline = math.inf
        if result is not None:
            try:
                rules.check_json(result, "result")  # what every store can keep as given
            except ValidationError as exc:
                error = TaskError(
                    "ResultNotSerializable", f"the handler's result is not JSON: {exc}"
                )
                return self._outcome(task, attempt, TaskStatus.FAILED, error=error)
        return self._outcome(task, attempt, TaskStatus.COMPLETED, result=result)

    async def _continue(self, task: Task, attempt: int, task_type: TaskType) -> Outcome:
        """One continuation of a workflow: replayed against its history, reported with
        what it recorded and started (see :mod:`.workflow_runner`)."""
        if self._store is None:
            raise TrellisError("this worker has no store to load workflow history from")
        state = await self._store.ask(LoadWorkflow(task.id))
        if state is None:
            raise TaskNotFound(f"no workflow with id {task.id!r}")
        payload = task_type.contract.parse(task.payload)
        done = await replay(task_type, payload, state, self._clock.now(), self._app)
        if done.error is not None:  # no attempt can do better
            return self._outcome(task, attempt, TaskStatus.FAILED, error=done.error)
        flow = done.continuation
        if done.waiting:
            return self._outcome(
                task, attempt, TaskStatus.WAITING, retry_at=done.wake_at, workflow=flow
            )
        result = done.result
        if task_type.contract.result is not None:
            result = task_type.contract.give(result)
        if result is not None:
            rules.check_json(result, "result")
        return self._outcome(task, attempt, TaskStatus.COMPLETED, result=result, workflow=flow)

    async def _call(self, task: Task, attempt: int, task_type: TaskType, ctx: TaskContext) -> Any:
        """Run the handler with its executor: in the loop, in a thread or in a process."""
        executor = task_type.executor
        if executor == "process":
            return await self._in_process(task, attempt, task_type)  # parses its own
        payload = task_type.contract.parse(task.payload)
        if executor == "async":
            self._loop_watch.current = task.type
            return await task_type.handler(ctx, payload)
        return await self._threads.run(
            task_type.handler,
            ctx,
            payload,
            task_id=task.id,
            type=task.type,
            attempt=attempt,
            worker=self.name,
        )

    async def _in_process(self, task: Task, attempt: int, task_type: TaskType) -> Any:
        """Run the handler in the process pool; a cancel or timeout kills its process."""
        if self._processes is None:
            raise _PoolFailure(TaskError("WorkerCrashed", "this worker has no process pool"))
        job = f"{task.id}:{attempt}"

        def progress(fraction: float, message: str | None) -> None:
            self.alive()
            self.report_progress(task.id, attempt, fraction, message)

        request = RunInProcess(
            job=job,
            handler=importable(task_type.handler),
            payload=json.dumps(task.payload),
            task_id=task.id,
            type=task.type,
            attempt=attempt,
            progress=progress,
        )
        await self._processes.tell(request)
        try:
            outcome = await request.reply.wait()
        finally:
            if not request.reply.is_set:  # cancelled or timed out: kill its process now
                try:
                    self._processes.tell_nowait(CancelRun(job))
                except TrellisError:
                    log.warning("the process pool did not take a cancel", job=job)
        if outcome.exception is not None:
            raise outcome.exception
        if outcome.error is not None:
            raise _PoolFailure(outcome.error)
        return None if outcome.result is None else json.loads(outcome.result)

    async def _traced(self, task: Task, attempt: int, task_type: TaskType, ctx: TaskContext) -> Any:
        """Run the handler in a span that continues the submitter's trace."""
        attributes = tracing.messaging("process", [task.queue], message_id=task.id)
        attributes["trellis.task_id"] = task.id
        attributes["trellis.task_type"] = task.type
        attributes["trellis.attempt"] = attempt
        attributes["trellis.worker"] = self.name
        with tracing.span(
            f"trellis.task {task.type}",
            parent=task.trace_context,
            kind="consumer",
            attributes=attributes,
        ):  # the span records the handler's exception, if any
            return await self._call(task, attempt, task_type, ctx)

    def _failed(self, task: Task, task_type: TaskType, exc: BaseException | TaskError) -> Outcome:
        attempt = task.attempt + 1
        if isinstance(exc, TaskError):
            error, retries, delay = exc, True, None
        else:
            error = TaskError(
                type(exc).__name__,
                _clean(str(exc) or type(exc).__name__, MAX_ERROR_MESSAGE),
                _clean("".join(traceback.format_exception(exc)), MAX_TRACEBACK),
            )
            retries = task_type.retries(exc)
            delay = exc.delay if isinstance(exc, Retry) else None
        if retries and attempt < task.max_attempts:
            if delay is None:
                delay = task_type.backoff.delay(attempt)
            retry_at = self._clock.now() + delay
            return self._outcome(task, attempt, TaskStatus.RETRYING, error=error, retry_at=retry_at)
        return self._outcome(task, attempt, TaskStatus.FAILED, error=error)

    def _outcome(self, task: Task, attempt: int, status: TaskStatus, **fields: Any) -> Outcome:
        return Outcome(task.id, self._owner, attempt, status, worker=self.name, **fields)

    def report_progress(
        self, task_id: str, attempt: int, fraction: float, message: str | None
    ) -> None:
        """Progress of the running attempt (dropped if that attempt is over)."""
        current = self._current
        if current is None or current[:2] != (task_id, attempt):
            return
        text = None if message is None else _clean(message, MAX_ERROR_MESSAGE)
        self._report_start()  # progress belongs to a running task
        self._tell(ReportProgress(task_id, fraction, text))

    def details(self) -> dict[str, Any] | None:
        """Its abandoned handler threads still running, if any (for ``/debug``)."""
        abandoned = self._threads.abandoned(self.name)
        if not abandoned:
            return None
        return {"abandoned_threads": [a.to_dict() for a in abandoned]}


def effective_timeout(
    task: float | None, task_type: float | None, max_duration: float | None
) -> float | None:
    """Seconds an attempt may run: the task's own timeout, else its type's, and never
    more than the type's ``max_duration``; None for no limit."""
    timeout = task if task is not None else task_type
    if max_duration is None:
        return timeout
    return max_duration if timeout is None else min(timeout, max_duration)


class _PoolFailure(Exception):
    """The process pool's report that a handler could not report its own error."""

    def __init__(self, error: TaskError) -> None:
        super().__init__(error.message)
        self.error = error


def _clean(text: str, limit: int) -> str:
    """Text any store can hold: no NUL or lone surrogate (written as escapes), at most
    ``limit`` characters."""
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"
