"""Tasks: a searchable, live list (cursor pages), a form to submit one, and per-type charts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from operator import attrgetter
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
from .._type_stats import ROW_LIMIT, SPANS, type_charts

PAGE_SIZE = 25
#: The query parameters a listing keeps from page to page (and in its live refreshes).
_FILTERS = ("status", "type", "queue", "id", "key", "schedule", "after", "before", "sort")
#: How a page may be sorted: (label, field, newest or highest first). The store pages by
#: id (creation order), so a sort orders the page shown, not the whole listing.
SORTS = {
    "newest": ("Newest first", "created_at", True),
    "oldest": ("Oldest first", "created_at", False),
    "priority": ("Highest prio first", "priority", True),
    "priority_low": ("Lowest prio first", "priority", False),
}


async def _type_names() -> list[str]:
    return sorted(task_type.name for task_type in await ui().runtime.task_types())


def _moment(text: str, field: str) -> float | None:
    """A time from the form's ``datetime-local`` value, read as UTC (as the UI shows times)."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field} must be a date and time", field=field) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


async def table_context(args: Mapping[str, str]) -> dict[str, Any]:
    """One page of tasks for the filters and cursor in ``args``."""
    filters = {name: args.get(name, "").strip() for name in _FILTERS}
    filters["id"] = filters["id"].lower()  # ids are written in lowercase
    sort = filters["sort"] if filters["sort"] in SORTS else "newest"
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
            id_prefix=filters["id"] or None,
            idempotency_key=filters["key"] or None,
            schedule_id=filters["schedule"] or None,
            created_after=_moment(filters["after"], "created after"),
            created_before=_moment(filters["before"], "created before"),
        )
    except TrellisError as exc:
        page, error = Page([], None), str(exc)
    _, field, descending = SORTS[sort]
    items = sorted(page.items, key=attrgetter(field, "id"), reverse=descending)
    chosen = {name: value for name, value in filters.items() if value}
    return {
        "page": page,
        "items": items,
        "filters": filters,
        "searching": any(value for name, value in chosen.items() if name != "sort"),
        "sorts": {name: label for name, (label, _, _) in SORTS.items()},
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


@bp.get("/tasks/charts")
@needs("read")
async def tasks_charts() -> Response:
    """Per type: completed and dead per bucket, and p50/p95 durations, from the store."""
    span = request.args.get("span", "hour")
    if span not in SPANS:
        span = "hour"
    label, seconds, bucket = SPANS[span]
    now = time.time()
    rows = await ui().runtime.finished_since(now - seconds, ROW_LIMIT)
    return await render(
        "_type_charts.html",
        charts=type_charts(rows, now, seconds, bucket),
        span=span,
        spans={name: text for name, (text, _, _) in SPANS.items()},
        label=label,
        capped=len(rows) >= ROW_LIMIT,
    )
