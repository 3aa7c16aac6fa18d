"""Dead letter: tasks that ran out of attempts, to inspect, requeue or purge."""

from __future__ import annotations

from typing import Any

from quart import Response, request, url_for

from ...access.check import needs
from ...errors import InvalidTransition, TaskNotFound, TrellisError
from ...lifecycle import TaskStatus
from ...stores.base import Page
from .._blueprint import bp
from .._render import Notice, go, is_htmx, render, render_with_notice
from .._state import ui

PAGE_SIZE = 50


async def _context(cursor: str | None) -> dict[str, Any]:
    error = None
    try:
        page = await ui().runtime.list(
            status=TaskStatus.DEAD, limit=PAGE_SIZE, cursor=cursor, include=()
        )
    except TrellisError as exc:
        page, error = Page([], None), str(exc)
    return {"page": page, "cursor": cursor, "error": error}


def _plural(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"


@bp.get("/dead")
@needs("read")
async def dead() -> Response:
    return await render("dead.html", **await _context(request.args.get("cursor") or None))


async def _done(notice: Notice, cursor: str | None) -> Response:
    if not is_htmx():
        return go(url_for("trellis_ui.dead"))
    return await render_with_notice(
        "_dead_table.html", "dead-notice", notice, **await _context(cursor)
    )


async def _chosen() -> tuple[list[str], str | None]:
    form = await request.form
    return form.getlist("ids"), form.get("cursor") or None


@bp.post("/dead/requeue")
@needs("operate")
async def requeue_dead() -> Response:
    ids, cursor = await _chosen()
    if not ids:
        return await _done(Notice(False, "Select at least one task."), cursor)
    requeued = 0
    for task_id in ids:
        try:
            await ui().runtime.requeue(task_id)
            requeued += 1
        except (InvalidTransition, TaskNotFound):
            continue  # no longer dead: someone else acted first
    skipped = len(ids) - requeued
    message = f"Requeued {_plural(requeued)}." + (f" Skipped {skipped}." if skipped else "")
    return await _done(Notice(True, message), cursor)


@bp.post("/dead/purge")
@needs("admin")
async def purge_dead() -> Response:
    ids, cursor = await _chosen()
    if not ids:
        return await _done(Notice(False, "Select at least one task."), cursor)
    purged = await ui().runtime.purge(ids)
    return await _done(Notice(True, f"Purged {_plural(purged)}."), cursor)
