"""Log lines for lifecycle transitions, from the same stream as everything else.

One line per finished attempt (``task completed``, ``task retrying``, ``task failed`` or
``task dead``, ``task cancelled``), with the fields an operator filters on; how many is
``RuntimeConfig.log_tasks``. Every other transition is a debug line, with
``log_transitions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import structlog

from ..lifecycle import TaskStatus, Transition

log = structlog.get_logger("trellis.tasks")

#: Which finished attempts get a line: every one, failures only (retries, failures, dead
#: letters), or none.
LogTasks = Literal["all", "failures", "none"]
LOG_TASKS: tuple[str, ...] = get_args(LogTasks)

_FAILURES = frozenset({TaskStatus.RETRYING, TaskStatus.FAILED, TaskStatus.DEAD})
_ENDS = _FAILURES | {TaskStatus.COMPLETED, TaskStatus.CANCELLED}


class TaskLog:
    """An observer of the lifecycle stream that logs each finished attempt once.

    ``ran_by`` maps the id of a task whose outcome is in the batch to the worker (of this
    node) that ran it; a move made elsewhere (an expired lease, a cancel before the start)
    has no worker and no node.
    """

    def __init__(
        self,
        node: str,
        *,
        tasks: LogTasks = "all",
        verbose: bool = False,
        ran_by: Mapping[str, str] | None = None,
    ) -> None:
        self.node = node
        self.tasks = tasks
        self.verbose = verbose
        self._ran_by: Mapping[str, str] = {} if ran_by is None else ran_by

    def __call__(self, batch: tuple[Transition, ...]) -> None:
        if self.tasks == "none" and not self.verbose:
            return
        # A failure that dead-letters is one attempt: one line, "task dead".
        dead = {task.id for task, event in batch if event.to_status is TaskStatus.DEAD}
        for transition in batch:
            status = transition.event.to_status
            if status in _ENDS:
                if status is TaskStatus.FAILED and transition.task.id in dead:
                    continue
                if self.tasks == "all" or (self.tasks == "failures" and status in _FAILURES):
                    self._finished(transition)
            elif self.verbose:
                task = transition.task
                log.debug(
                    f"task {status.value}",
                    task_id=task.id,
                    task_type=task.type,
                    queue=task.queue,
                    status=status.value,
                    attempt=task.attempt,
                )

    def _finished(self, transition: Transition) -> None:
        task, event = transition
        status = event.to_status
        worker = self._ran_by.get(task.id)
        ran = event.from_status is TaskStatus.RUNNING or status is TaskStatus.DEAD
        fields: dict[str, Any] = {
            "task_id": task.id,
            "task_type": task.type,
            "queue": task.queue,
            "status": status.value,
            "attempt": task.attempt,
            "duration": (
                round(event.at - task.started_at, 6)
                if ran and task.started_at is not None
                else None
            ),
            "node": None if worker is None else self.node,
            "worker": worker,
            "error": None if task.error is None else f"{task.error.type}: {task.error.message}",
        }
        trace_id = _trace_id(task.trace_context)
        if trace_id is not None:
            fields["trace_id"] = trace_id
        if status is TaskStatus.DEAD:
            log.error("task dead", **fields)
        elif status in _FAILURES:
            log.warning(f"task {status.value}", **fields)
        else:
            log.info(f"task {status.value}", **fields)


def _trace_id(carrier: dict[str, str] | None) -> str | None:
    """The trace a task belongs to, from its stored W3C ``traceparent``."""
    if not carrier:
        return None
    parts = carrier.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None
