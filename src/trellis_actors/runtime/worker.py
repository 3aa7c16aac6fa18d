"""A worker actor: asks the queue for a task, runs its handler, reports the outcome."""

from __future__ import annotations

import json
import traceback
from contextlib import nullcontext
from typing import Any

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref
from ..actors._actor import _STOP
from ..app import App, Retry, TaskType
from ..context import TaskContext
from ..errors import TrellisError
from ..lifecycle import Task, TaskError, TaskStatus
from ..stores.base import Outcome
from .messages import (
    CancelTask,
    Finish,
    Next,
    Progress,
    QueueMsg,
    Release,
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

    def __init__(
        self,
        app: App,
        *,
        owner: str,
        queue: Ref[QueueMsg],
        store: Ref[StoreMsg],
        clock: Clock,
    ) -> None:
        super().__init__()
        self._app = app
        self._owner = owner
        self._queue = queue
        self._store = store
        self._clock = clock
        self._current: tuple[str, trio.CancelScope] | None = None
        self._release = False  # the current task is to go back to the store, not end

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[WorkerMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._control)
            task_status.started(self.ref)
            outcome: Outcome | None = None
            while not self.stop_requested.is_set():
                task = await self._next(outcome)
                if task is None:
                    break
                outcome = await self._execute(task)
            if outcome is not None:  # stopped before reporting it with the next ask
                await self._store.tell(Finish((outcome,)))
            nursery.cancel_scope.cancel()

    async def _next(self, outcome: Outcome | None) -> Task | None:
        task = await self._queue.ask(Next(self.name, self.ref, outcome), timeout=None)
        if task is None and not self.stop_requested.is_set():
            await self.stop_requested.wait()  # the queue is draining
        return task

    async def _control(self) -> None:
        while (msg := await self.receive()) is not _STOP:
            match msg:
                case CancelTask(task_id, _, release):
                    if self._current is not None and self._current[0] == task_id:
                        self._release = release
                        self._current[1].cancel()
        # Stopping: a ``Next`` we may be waiting on is answered with None. A task handed
        # out before the queue sees this is still run: stopping is graceful.
        await self._queue.tell(StopAsking(self.name))

    async def _execute(self, task: Task) -> Outcome | None:
        """Run one attempt; the outcome is reported with the next ``Next`` (None: released)."""
        self.alive()
        try:
            task_type: TaskType | None = self._app.get(task.type)
        except TrellisError:
            task_type = None
        scope = trio.CancelScope()
        self._current = (task.id, scope)
        self._release = False
        try:
            with scope:
                outcome = await self._attempt(task, task_type, scope)
        except trio.Cancelled:
            # Cancelled from outside (shutdown past its grace period): give the task back.
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._store.ask(Release((task.id,), self._owner))
            raise
        finally:
            self._current = None
        if scope.cancelled_caught and self._release:
            await self._store.ask(Release((task.id,), self._owner))
            return None
        if scope.cancelled_caught:
            return self._outcome(task, TaskStatus.CANCELLED)
        return outcome

    async def _attempt(
        self,
        task: Task,
        task_type: TaskType | None,
        scope: trio.CancelScope,
    ) -> Outcome:
        if task_type is None:
            error = TaskError("UnknownTaskType", f"no handler is registered for {task.type!r}")
            return self._outcome(task, TaskStatus.FAILED, error=error)
        ctx = TaskContext(
            task_id=task.id,
            type=task.type,
            attempt=task.attempt,
            make_log=lambda: log.bind(
                task_id=task.id, task_type=task.type, attempt=task.attempt, worker=self.name
            ),
            cancel_scope=scope,
            report_progress=self._progress(task.id),
            alive=self.alive,
        )
        timeout = task.timeout if task.timeout is not None else task_type.timeout
        try:
            with trio.fail_after(timeout) if timeout is not None else nullcontext():
                result = await task_type.handler(ctx, task.payload)
        except trio.TooSlowError:
            return self._failure(task, task_type, TaskTimeout(f"ran past its {timeout}s timeout"))
        except Exception as exc:
            return self._failure(task, task_type, exc)
        if result is not None:
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:
                error = TaskError(
                    "ResultNotSerializable", f"the handler's result is not JSON: {exc}"
                )
                return self._outcome(task, TaskStatus.FAILED, error=error)
        return self._outcome(task, TaskStatus.COMPLETED, result=result)

    def _failure(self, task: Task, task_type: TaskType, exc: BaseException) -> Outcome:
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

    def _progress(self, task_id: str) -> Any:
        async def report(fraction: float, message: str | None) -> None:
            await self._store.tell(Progress(task_id, fraction, message))

        return report
