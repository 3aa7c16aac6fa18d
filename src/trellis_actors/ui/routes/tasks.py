"""Tasks: a filterable, live list (cursor pages), and a form to submit one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from quart import Response, g, request, url_for

from ...access.check import needs
from ...errors import TrellisError, ValidationError
from ...lifecycle import TaskStatus
from ...stores.base import Page
from .._blueprint import bp
from .._forms import TASK_FIELDS, submission, task_errors
from .._render import go, is_htmx, render
from .._state import ui

PAGE_SIZE = 25
_FILTERS = ("status", "type", "queue")


async def _type_names() -> list[str]:
    return sorted(task_type.name for task_type in await ui().runtime.task_types())


async def table_context(args: Mapping[str, str]) -> dict[str, Any]:
    """One page of tasks for the filters and cursor in ``args``."""
    filters = {name: args.get(name, "").strip() for name in _FILTERS}
    cursor = args.get("cursor", "").strip() or None
    error = None
    try:
        page = await ui().runtime.list(
            status=filters["status"] or None,
            type=filters["type"] or None,
            queue=filters["queue"] or None,
            limit=PAGE_SIZE,
            cursor=cursor,
            include=(),  # the table shows no payloads nor results
        )
    except TrellisError as exc:
        page, error = Page([], None), str(exc)
    chosen = {name: value for name, value in filters.items() if value}
    return {
        "page": page,
        "filters": filters,
        "cursor": cursor,
        "error": error,
        "query": urlencode({**chosen, **({"cursor": cursor} if cursor else {})}),
        "first_query": urlencode(chosen),
        "next_query": urlencode({**chosen, "cursor": page.next_cursor or ""}),
        "statuses": [status.value for status in TaskStatus],
    }


def _blank_form() -> dict[str, str]:
    return {"type": "", "payload": "{}", "queue": "", "priority": "0", "delay": ""}


async def _form_context(
    values: Mapping[str, str], errors: Mapping[str, str], submitted: str | None = None
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "submitted": submitted,
        "types": await _type_names(),
    }


@bp.get("/tasks")
@needs("read")
async def tasks() -> Response:
    context = await table_context(request.args)
    context.update(await _form_context(_blank_form(), {}))
    return await render("tasks.html", **context)


@bp.get("/tasks/table")
@needs("read")
async def tasks_table() -> Response:
    return await render("_tasks_table.html", **await table_context(request.args))


@bp.post("/tasks")
@needs("submit")
async def submit_task() -> Response:
    """Validate, then store; a rejected form stores nothing and shows why, inline."""
    form = await request.form
    values = {name: form.get(name, "") for name in TASK_FIELDS}
    runtime = ui().runtime
    try:
        task = submission(runtime, form)
        if refusal := g.trellis_grant.refusal(task.type, task.queue):
            raise ValidationError(refusal)  # a token limited to some types or queues
        (done,) = await runtime.enqueue([task])
    except TrellisError as exc:
        context = await _form_context(values, task_errors(exc))
        if is_htmx():
            return await render("_submit_form.html", 422, **context)
        context.update(await table_context({}))
        return await render("tasks.html", 422, **context)
    if not is_htmx():
        return go(url_for("trellis_ui.task", task_id=done.task.id))
    return await render("_submit_form.html", **await _form_context(values, {}, done.task.id))
