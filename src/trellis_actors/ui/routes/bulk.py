"""Bulk actions on the task list: cancel, requeue or purge every task its filter selects.

They run the runtime's bulk operations, as ``POST /tasks/bulk/*`` does, with the rules
every way in meets (:func:`trellis_actors.rules.check_filter`). A form posted without
``confirm`` only counts (a dry run) and asks to confirm; with it, the operation runs and
says how many tasks it touched. Rows checked in the list can be cancelled or requeued
too, one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Response, request

from ...access.check import needs
from ...decisions import Bulk
from ...errors import TrellisError
from .._blueprint import bp
from .._bulk import ACTIONS, bulk_context, bulk_filter, chosen, each, plural, told
from .._render import is_htmx, render
from .._state import ui
from .tasks import page_context


async def _bulk(action: Bulk) -> Response:
    """Count (no ``confirm``) or do ``action`` to the tasks the posted filters select."""
    form = await request.form
    verb, past, _ = ACTIONS[action]
    confirmed = form.get("confirm") == "1"
    try:
        touched = await ui().runtime.bulk(action, dry_run=not confirmed, **bulk_filter(form))
    except TrellisError as exc:
        return await _answer(form, {"action": action.value, "error": str(exc)}, 422)
    state: dict[str, Any] = {"action": action.value, "verb": verb, "past": past}
    if confirmed:
        state["done"] = f"{plural(touched).capitalize()} {past}."
    else:
        state.update(matched=touched, tasks=plural(touched))
    return await _answer(form, state, 200)


async def _chosen(action: Bulk) -> Response:
    """Do ``action`` to each task whose row was checked (skipping those that moved)."""
    form = await request.form
    runtime = ui().runtime
    act = runtime.cancel if action is Bulk.CANCEL else runtime.requeue
    _, past, _ = ACTIONS[action]
    try:
        done, skipped = await each(chosen(form.getlist("ids")), act)
    except TrellisError as exc:
        return await _answer(form, {"action": action.value, "error": str(exc)}, 422)
    return await _answer(form, {"action": action.value, "done": told(past, done, skipped)}, 200)


async def _answer(form: Mapping[str, str], state: dict[str, Any], status: int) -> Response:
    if is_htmx():
        response = await render("_bulk.html", status, **bulk_context(form, bulk=state))
        if "done" in state:  # the list shows the tasks as they are now
            response.headers["HX-Trigger"] = "trellis:changed"
        return response
    context = await page_context(form)
    context.update(bulk_context(form, bulk=state))
    return await render("tasks.html", status, **context)


@bp.get("/tasks/bulk")
@needs("read")
async def bulk_bar() -> Response:
    """The bulk bar for the filters in the query, as the task list shows it."""
    return await render("_bulk.html", **bulk_context(request.args))


@bp.post("/tasks/bulk/cancel")
@needs("operate")
async def bulk_cancel() -> Response:
    return await _bulk(Bulk.CANCEL)


@bp.post("/tasks/bulk/requeue")
@needs("operate")
async def bulk_requeue() -> Response:
    return await _bulk(Bulk.REQUEUE)


@bp.post("/tasks/bulk/purge")
@needs("admin")
async def bulk_purge() -> Response:
    return await _bulk(Bulk.PURGE)


@bp.post("/tasks/chosen/cancel")
@needs("operate")
async def chosen_cancel() -> Response:
    return await _chosen(Bulk.CANCEL)


@bp.post("/tasks/chosen/requeue")
@needs("operate")
async def chosen_requeue() -> Response:
    return await _chosen(Bulk.REQUEUE)
