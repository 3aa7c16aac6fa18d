"""Dead letter: tasks that ran out of attempts, to inspect, requeue or purge."""

from __future__ import annotations

from typing import Any

from quart import Response, request, url_for

from ...access.check import needs
from ...errors import TrellisError, ValidationError
from ...lifecycle import TaskStatus
from ...stores.base import Page
from .._blueprint import bp
from .._bulk import chosen, each, told
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
    try:
        requeued, skipped = await each(chosen(ids), ui().runtime.requeue)
    except ValidationError as exc:
        return await _done(Notice(False, str(exc)), cursor)
    return await _done(Notice(True, told("requeued", requeued, skipped)), cursor)


@bp.post("/dead/purge")
@needs("admin")
async def purge_dead() -> Response:
    ids, cursor = await _chosen()
    try:
        purged = await ui().runtime.purge(chosen(ids))
    except ValidationError as exc:
        return await _done(Notice(False, str(exc)), cursor)
    return await _done(Notice(True, told("purged", purged)), cursor)
