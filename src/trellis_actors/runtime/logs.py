"""Log lines for lifecycle transitions, from the same stream as everything else."""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from ..lifecycle import TaskEvent, TaskStatus, Transition

log = structlog.get_logger("trellis.tasks")


_NOTABLE = frozenset(
    {TaskStatus.RETRYING, TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.CANCELLED}
)


def log_transitions(batch: Iterable[Transition], *, verbose: bool) -> None:
    """Failures, retries, dead letters and cancellations always; the rest when ``verbose``
    (at debug level: at high throughput one line per transition would dominate the cost)."""
    for task, event in batch:
        status = event.to_status
        if not verbose and status not in _NOTABLE:
            continue
        if status in (TaskStatus.RETRYING, TaskStatus.FAILED, TaskStatus.DEAD):
            error = task.error
            method = log.error if status is TaskStatus.DEAD else log.warning
            method(
                f"task {status.value}",
                task_id=task.id,
                task_type=task.type,
                status=status.value,
                attempt=task.attempt,
                error=None if error is None else f"{error.type}: {error.message}",
                duration=_duration(task.started_at, event),
            )
        elif status is TaskStatus.CANCELLED:
            log.info("task cancelled", task_id=task.id, task_type=task.type, status=status.value)
        elif verbose:
            log.debug(
                f"task {status.value}",
                task_id=task.id,
                task_type=task.type,
                status=status.value,
                attempt=task.attempt,
                duration=_duration(task.started_at, event)
                if event.from_status is TaskStatus.RUNNING
                else None,
            )


def _duration(started_at: float | None, event: TaskEvent) -> float | None:
    return None if started_at is None else round(event.at - started_at, 6)
