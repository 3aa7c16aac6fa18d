"""Schedules: next and last fire times; create, edit, pause, resume, run now, delete; and
one schedule's page with the tasks it fired."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Response, request, url_for

from ...access.check import needs
from ...errors import ScheduleNotFound, TrellisError
from ...scheduling.model import Schedule
from .._blueprint import bp
from .._forms import SCHEDULE_FIELDS, schedule_changes, schedule_errors, schedule_spec, values_of
from .._render import Notice, go, is_htmx, render, render_text, render_with_notice
from .._state import ui
from .tasks import table_context


async def _table() -> dict[str, Any]:
    return {"schedules": await ui().runtime.list_schedules()}


async def _form(
    values: Mapping[str, str], errors: Mapping[str, str], created: str | None = None
) -> dict[str, Any]:
    types = sorted(task_type.name for task_type in await ui().runtime.task_types())
    return {
        "values": values,
        "errors": errors,
        "created": created,
        "types": types,
        "editing": None,
    }


def _blank() -> dict[str, str]:
    values = dict.fromkeys(SCHEDULE_FIELDS, "")
    values.update(kind="every", when="1m", misfire="skip", payload="{}")
    return values


@bp.get("/schedules")
@needs("read")
async def schedules() -> Response:
    return await render("schedules.html", **await _table(), **await _form(_blank(), {}))


@bp.get("/schedules/table")
@needs("read")
async def schedules_table() -> Response:
    return await render("_schedules_table.html", **await _table())


@bp.post("/schedules")
@needs("operate")
async def create_schedule() -> Response:
    form = await request.form
    values = {name: form.get(name, "") for name in SCHEDULE_FIELDS}
    try:
        name, task_type, payload, spec = schedule_spec(form)
        created = await ui().runtime.add_schedule(name, task_type, payload, **spec)
    except TrellisError as exc:
        context = await _form(values, schedule_errors(exc))
        if is_htmx():
            return await render("_schedule_form.html", 422, **context)
        return await render("schedules.html", 422, **await _table(), **context)
    if not is_htmx():
        return go(url_for("trellis_ui.schedules"))
    # The new form, and the table swapped out of band so the schedule shows at once.
    form_html = await render_text("_schedule_form.html", **await _form(_blank(), {}, created.name))
    table_html = await render_text("_schedules_table.html", oob=True, **await _table())
    return Response(form_html + table_html, 200, content_type="text/html; charset=utf-8")


_ACTIONS = {"pause": "Paused", "resume": "Resumed", "run": "Fired", "delete": "Deleted"}


@bp.post("/schedules/<schedule_id>/<action>")
@needs("operate")
async def schedule_action(schedule_id: str, action: str) -> Response:
    runtime = ui().runtime
    notice: Notice
    fired = None
    try:
        match action:
            case "pause":
                schedule = await runtime.pause_schedule(schedule_id)
            case "resume":
                schedule = await runtime.resume_schedule(schedule_id)
            case "run":
                schedule = await runtime.get_schedule(schedule_id)
                fired = (await runtime.run_schedule(schedule_id)).id
            case "delete":
                schedule = await runtime.get_schedule(schedule_id)
                await runtime.delete_schedule(schedule_id)
            case _:
                return await render("error.html", 404, title="Not found", message="No action.")
        notice = Notice(True, f"{_ACTIONS[action]} {schedule.name}.", fired)
    except TrellisError as exc:
        notice = Notice(False, str(exc))
    if not is_htmx():
        return go(url_for("trellis_ui.schedules"))
    return await render_with_notice(
        "_schedules_table.html", "schedules-notice", notice, **await _table()
    )


async def _one(
    schedule: Schedule, values: Mapping[str, str], errors: Mapping[str, str]
) -> dict[str, Any]:
    """One schedule's page: its facts, its edit form and the tasks it fired."""
    context = await _form(values, errors)
    context.update(await table_context({"schedule": schedule.id}))
    context.update(schedule=schedule, editing=schedule, saved=False)
    return context


async def _missing(schedule_id: str) -> Response:
    return await render(
        "error.html",
        404,
        title="Schedule not found",
        message=f"There is no schedule {schedule_id}.",
    )


@bp.get("/schedules/<schedule_id>")
@needs("read")
async def schedule(schedule_id: str) -> Response:
    try:
        found = await ui().runtime.get_schedule(schedule_id)
    except ScheduleNotFound:
        return await _missing(schedule_id)
    context = await _one(found, values_of(found), {})
    context["saved"] = request.args.get("saved") == "1"
    return await render("schedule.html", **context)


@bp.post("/schedules/<schedule_id>")
@needs("operate")
async def edit_schedule(schedule_id: str) -> Response:
    """Change a schedule as ``PATCH /schedules/{id}`` does; a rejected form changes nothing."""
    runtime = ui().runtime
    form = await request.form
    values = {name: form.get(name, "") for name in SCHEDULE_FIELDS}
    try:
        current = await runtime.get_schedule(schedule_id)
    except ScheduleNotFound:
        return await _missing(schedule_id)
    try:
        saved = await runtime.update_schedule(schedule_id, **schedule_changes(form))
    except TrellisError as exc:
        return await render(
            "schedule.html", 422, **await _one(current, values, schedule_errors(exc))
        )
    # Post/redirect/get: a reload does not send the form again.
    return go(url_for("trellis_ui.schedule", schedule_id=saved.id, saved=1))
