"""One task: payload, result, error, event timeline and progress; cancel and requeue."""

from __future__ import annotations

from typing import Any

from quart import Response, url_for

from ...access.check import needs
from ...errors import InvalidTransition, TaskNotFound
from ...lifecycle import CANCELLABLE, TaskStatus
from .._blueprint import bp
from .._render import Notice, go, is_htmx, render, render_with_notice
from .._state import ui


async def _context(task_id: str) -> dict[str, Any] | None:
    runtime = ui().runtime
    try:
        task = await runtime.get(task_id)
        events = await runtime.events(task_id)
    except TaskNotFound:
        return None
    workflow = None
    if task.type in runtime.app and runtime.app.get(task.type).workflow:
        try:
            workflow = await runtime.workflow(task_id)
        except TaskNotFound:  # purged meanwhile
            return None
    return {
        "task": task,
        "events": events,
        "workflow": workflow,
        "steps": {} if workflow is None else {step.id: step for step in workflow.steps},
        "can_cancel": task.status in CANCELLABLE,
        "can_requeue": task.status is TaskStatus.DEAD,
    }


async def _missing(task_id: str) -> Response:
    return await render(
        "error.html", 404, title="Task not found", message=f"There is no task {task_id}."
    )


@bp.get("/tasks/<task_id>")
@needs("read")
async def task(task_id: str) -> Response:
    context = await _context(task_id)
    if context is None:
        return await _missing(task_id)
    return await render("task.html", **context)


@bp.get("/tasks/<task_id>/live")
@needs("read")
async def task_live(task_id: str) -> Response:
    context = await _context(task_id)
    if context is None:
        return await _missing(task_id)
    return await render("_task_live.html", **context)


async def _act(task_id: str, action: str) -> Response:
    runtime = ui().runtime
    try:
        if action == "cancel":
            await runtime.cancel(task_id)
            notice = Notice(True, "Cancelled.")
        else:
            await runtime.requeue(task_id)
            notice = Notice(True, "Requeued: the task will run again.")
    except (InvalidTransition, TaskNotFound) as exc:
        notice = Notice(False, str(exc))
    if not is_htmx():
        return go(url_for("trellis_ui.task", task_id=task_id))
    context = await _context(task_id)
    if context is None:
        return await _missing(task_id)
    return await render_with_notice("_task_live.html", "task-notice", notice, **context)


@bp.post("/tasks/<task_id>/cancel")
@needs("operate")
async def cancel_task(task_id: str) -> Response:
    return await _act(task_id, "cancel")


@bp.post("/tasks/<task_id>/requeue")
@needs("operate")
async def requeue_task(task_id: str) -> Response:
    return await _act(task_id, "requeue")
