"""A worker actor: asks the queue for a task, runs its handler, reports the outcome."""

from __future__ import annotations

import contextlib
import json
import math
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
import trio

from .. import tracing
from .._time import Clock
from ..actors import Actor, Ref
from ..app import App, Retry, TaskType
from ..context import TaskContext
from ..errors import AskTimeout, TrellisError
from ..lifecycle import Task, TaskError, TaskStatus
from ..stores.base import Outcome
from .messages import (
    CancelTask,
    Next,
    Progress,
    QueueMsg,
    Release,
    Settle,
    StopAsking,
    StoreMsg,
    WorkerMsg,
)

log = structlog.get_logger("trellis.worker")


class TaskTimeout(TrellisError, TimeoutError):
    """A handler ran past its task's timeout."""


class Worker(Actor[WorkerMsg]):
    """Runs one task at a time. Its mailbox takes ``CancelTask`` while a handler runs.

    On a stop request the worker finishes the task in hand and asks for no more; when its
    supervisor's shutdown timeout then cancels it, the task is released back to the store
    to run again.
    """

    kind = "worker"
    task_log = log  # handlers' ctx.log binds to it

    def __init__(
        self,
        app: App,
        *,
        owner: str,
        queue: Ref[QueueMsg],
        store: Ref[StoreMsg],
        clock: Clock,
        reask: float = 30.0,
    ) -> None:
        super().__init__()
        self._reask = reask
        self._app = app
        self._owner = owner
        self._queue = queue
        self._store = store
        self._clock = clock
        self._current: tuple[str, trio.CancelScope] | None = None
        # Why the current task's scope was cancelled: "cancel", "release" or None (its
        # deadline, or the handler itself).
        self._interrupt: str | None = None
        self._deadline = math.inf
        self._timeout: float | None = None
        self._cancelled: dict[str, bool] = {}  # tasks in hand cancelled before they start
        self._control_scope = trio.CancelScope()

    def request_stop(self) -> None:
        super().request_stop()
        self._control_scope.cancel()  # _control does not wait in receive()

    @contextmanager
    def _idle(self) -> Iterator[None]:
        """Waiting for work is being idle, not hung: the idle watchdog leaves us alone."""
        self.mailbox.waiting = True
        try:
            yield
        finally:
            self.mailbox.waiting = False
            self.alive()

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[WorkerMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._control)
            task_status.started(self.ref)
            outcomes: tuple[Outcome, ...] = ()
            released: tuple[str, ...] = ()
            abandoned: Next | None = None
            while not self.stop_requested.is_set():
                request = Next(self.name, self.ref, outcomes, abandoned)
                with self._idle(), contextlib.suppress(AskTimeout):
                    await self._queue.ask(request, timeout=self._reask)
                if not request.reply.is_set:
                    # No answer for a long while: the queue may have been restarted and
                    # forgotten us. Ask afresh (outcomes already in its mailbox still count).
                    outcomes, abandoned = (), request
                    continue
                abandoned = None
                tasks = await request.reply.wait()
                outcomes = ()
                if tasks is None:
                    break
                outcomes, released = await self._run_batch(tasks)
            if outcomes or released:
                await self._queue.tell(Settle(self.name, outcomes, released))
            with self._idle():
                await self.stop_requested.wait()  # a draining queue answers None first
            nursery.cancel_scope.cancel()

    async def _run_batch(
        self, tasks: tuple[Task, ...]
    ) -> tuple[tuple[Outcome, ...], tuple[str, ...]]:
        """Run the tasks in hand in order; once stopping, give the unstarted ones back."""
        outcomes: list[Outcome] = []
        released: list[str] = []
        index = 0
        running: str | None = None  # the task whose handler is running
        try:
            while index < len(tasks):
                # One cancel scope serves a run of tasks (entering one costs more than a
                # no-op task). When it fires, the task it interrupted ends and a fresh
                # scope serves the rest.
                with trio.CancelScope() as scope:
                    while index < len(tasks):
                        task = tasks[index]
                        release = self._cancelled.pop(task.id, None)
                        if self.stop_requested.is_set() or release:
                            rest = tuple(t.id for t in tasks[index:])
                            await self._store.ask(Release(rest, self._owner))
                            return tuple(outcomes), (*released, *rest)
                        if release is False:  # cancelled before it started
                            outcomes.append(self._outcome(task, TaskStatus.CANCELLED))
                        else:
                            running = task.id
                            outcomes.append(await self._attempt(task, scope))
                            running = None
                        index += 1
                if not scope.cancelled_caught:
                    break
                task = tasks[index]  # the task the scope interrupted
                index += 1
                running = None
                if self._interrupt == "release":
                    await self._store.ask(Release((task.id,), self._owner))
                    released.append(task.id)
                elif self._interrupt is None and trio.current_time() >= self._deadline:
                    timeout = TaskTimeout(f"ran past its {task.timeout or self._timeout}s timeout")
                    outcomes.append(self._failed(task, self._app.get(task.type), timeout))
                else:
                    outcomes.append(self._outcome(task, TaskStatus.CANCELLED))
        except trio.Cancelled:
            # Cancelled from outside. Stopping (shutdown past its grace period): every task
            # in hand goes back. Otherwise the supervisor killed us as hung: the task that
            # was running counts as an attempt (the queue reports it lost once we are
            # restarted), so a task that always hangs cannot kill workers for ever.
            keep = None if self.stop_requested.is_set() else running
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                rest = tuple(t.id for t in tasks[index:] if t.id != keep)
                if rest:
                    await self._store.ask(Release(rest, self._owner))
            raise
        finally:
            self._current = None
        return tuple(outcomes), tuple(released)

    async def _control(self) -> None:
        # The mailbox is read directly: ``receive()`` would mark the worker idle all the
        # while, and the idle watchdog would never see a handler hang.
        with self._control_scope:
            while True:
                try:
                    msg = await self.mailbox.get()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    break
                match msg:
                    case CancelTask(task_id, _, release):
                        if self._current is not None and self._current[0] == task_id:
                            self._interrupt = "release" if release else "cancel"
                            self._current[1].cancel()
                        else:  # still waiting its turn in our hands
                            self._cancelled[task_id] = release
        # Stopping: a ``Next`` we may be waiting on is answered with None. Tasks handed
        # out before the queue sees this are given back unstarted.
        await self._queue.tell(StopAsking(self.name))

    async def _attempt(self, task: Task, scope: trio.CancelScope) -> Outcome:
        """Run the handler once under ``scope``, turning what it raises into an outcome
        that says how long it took."""
        self.alive()
        started = self.mailbox.last_alive  # now
        outcome = await self._handle(task, scope)
        outcome.seconds = trio.current_time() - started
        return outcome

    async def _handle(self, task: Task, scope: trio.CancelScope) -> Outcome:
        if task.type not in self._app:
            error = TaskError("UnknownTaskType", f"no handler is registered for {task.type!r}")
            return self._outcome(task, TaskStatus.FAILED, error=error)
        task_type = self._app.get(task.type)
        ctx = TaskContext(
            task_id=task.id, type=task.type, attempt=task.attempt, cancel_scope=scope, host=self
        )
        timeout = task.timeout if task.timeout is not None else task_type.timeout
        self._timeout = timeout
        self._deadline = math.inf if timeout is None else trio.current_time() + timeout
        if timeout is not None:
            scope.deadline = self._deadline
        self._interrupt = None
        self._current = (task.id, scope)
        try:
            if task.trace_context is None:
                result = await task_type.handler(ctx, task.payload)
            else:
                result = await self._traced(task, task_type.handler, ctx)
        except Exception as exc:
            return self._failed(task, task_type, exc)
        finally:
            self._current = None
            if timeout is not None:
                scope.deadline = math.inf
        if result is not None:
            try:
                json.dumps(result, allow_nan=False)  # NaN and Infinity are not JSON
            except (TypeError, ValueError, RecursionError) as exc:  # too deep: RecursionError
                error = TaskError(
                    "ResultNotSerializable", f"the handler's result is not JSON: {exc}"
                )
                return self._outcome(task, TaskStatus.FAILED, error=error)
        return self._outcome(task, TaskStatus.COMPLETED, result=result)

    async def _traced(self, task: Task, handler: Any, ctx: TaskContext) -> Any:
        """Run the handler in a span that continues the submitter's trace."""
        attributes = {
            "trellis.task_id": task.id,
            "trellis.task_type": task.type,
            "trellis.attempt": task.attempt,
            "trellis.worker": self.name,
        }
        with tracing.span(
            f"trellis.task {task.type}",
            parent=task.trace_context,
            kind="consumer",
            attributes=attributes,
        ):  # the span records the handler's exception, if any
            return await handler(ctx, task.payload)

    def _failed(self, task: Task, task_type: TaskType, exc: BaseException) -> Outcome:
        error = TaskError(
            type(exc).__name__,
            str(exc) or type(exc).__name__,
            "".join(traceback.format_exception(exc)),
        )
        if task_type.retries(exc) and task.attempt < task.max_attempts:
            delay = exc.delay if isinstance(exc, Retry) else None
            if delay is None:
                delay = task_type.backoff.delay(task.attempt)
            return self._outcome(
                task, TaskStatus.RETRYING, error=error, retry_at=self._clock.now() + delay
            )
        return self._outcome(task, TaskStatus.FAILED, error=error)

    def _outcome(self, task: Task, status: TaskStatus, **fields: Any) -> Outcome:
        return Outcome(task.id, self._owner, task.attempt, status, **fields)

    async def report_progress(self, task_id: str, fraction: float, message: str | None) -> None:
        await self._store.tell(Progress(task_id, fraction, message))
