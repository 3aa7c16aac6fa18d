"""``/schedules``: create, list, read, change, pause, resume, fire now and delete schedules."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import pydantic
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response

from ...errors import UnknownTaskType, ValidationError
from ...runtime.runtime import Runtime
from ...scheduling.model import Schedule
from .._encode import json_response
from .._parse import parse_json
from .._state import api
from ..auth import needs
from ..errors import ApiError, from_pydantic
from ..openapi import no_content
from ..schemas import (
    ErrorOut,
    ScheduleChanges,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
    TaskOut,
)

bp = Blueprint("schedules", __name__)

M = TypeVar("M", ScheduleIn, ScheduleChanges)
#: Given to ``add_schedule`` by position; the rest go as keywords.
_POSITIONAL = frozenset({"name", "task_type", "payload"})


@bp.get("/schedules")
@needs("read")
@document_response(ScheduleList)
async def list_schedules() -> Response:
    """Every schedule, ordered by name."""
    schedules = await api().runtime.list_schedules()
    return json_response({"items": [schedule.to_dict() for schedule in schedules]})


@bp.post("/schedules")
@needs("operate")
@document_request(ScheduleIn)
@document_response(ScheduleOut, 201)
@document_response(ErrorOut, 400)
@document_response(ErrorOut, 409)
@document_response(ErrorOut, 413)
async def create_schedule() -> Response:
    """Create a schedule: every so often (``every``), on a cron expression (``cron``, in
    ``timezone``) or once (``at``).

    Answers 201 with the schedule; 400 naming the field at fault (an unknown task type, a
    bad spec, not exactly one of every, cron and at); 409 when the name is taken. A
    rejected request stores nothing.
    """
    runtime = api().runtime
    body = await _body(ScheduleIn)
    spec = {
        name: value
        for name in body.model_fields_set - _POSITIONAL
        if (value := getattr(body, name)) is not None  # null means the default
    }
    add = runtime.add_schedule(body.name, body.task_type, body.payload, **spec)
    schedule = await _saved(runtime, add, body.name)
    return json_response(schedule.to_dict(), 201)


@bp.get("/schedules/<schedule_id>")
@needs("read")
@document_response(ScheduleOut)
@document_response(ErrorOut, 404)
async def get_schedule(schedule_id: str) -> Response:
    """One schedule: its spec, what each fire creates, and its next and last slots."""
    return json_response((await api().runtime.get_schedule(schedule_id)).to_dict())


@bp.patch("/schedules/<schedule_id>")
@needs("operate")
@document_request(ScheduleChanges)
@document_response(ScheduleOut)
@document_response(ErrorOut, 400)
@document_response(ErrorOut, 404)
@document_response(ErrorOut, 409)
@document_response(ErrorOut, 413)
async def change_schedule(schedule_id: str) -> Response:
    """Change some of a schedule's fields; the others keep their values.

    A new spec (``every``, ``cron``, ``at``, ``timezone``) plans the schedule again from
    now; other changes keep its slots. Errors as for creating one, and 404 for an unknown id.
    """
    runtime = api().runtime
    body = await _body(ScheduleChanges)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    update = runtime.update_schedule(schedule_id, **changes)
    schedule = await _saved(runtime, update, changes.get("name"), schedule_id)
    return json_response(schedule.to_dict())


@bp.delete("/schedules/<schedule_id>")
@needs("operate")
@no_content("Deleted. The tasks it created stay.")
@document_response(ErrorOut, 404)
async def delete_schedule(schedule_id: str) -> Response:
    """Delete a schedule: it fires no more. The tasks it created stay."""
    await api().runtime.delete_schedule(schedule_id)
    response = Response(b"", 204)
    del response.headers["Content-Type"]  # no body, so no type
    return response


@bp.post("/schedules/<schedule_id>/pause")
@needs("operate")
@document_response(ScheduleOut)
@document_response(ErrorOut, 404)
async def pause_schedule(schedule_id: str) -> Response:
    """Pause a schedule: it fires nothing until resumed."""
    return json_response((await api().runtime.pause_schedule(schedule_id)).to_dict())


@bp.post("/schedules/<schedule_id>/resume")
@needs("operate")
@document_response(ScheduleOut)
@document_response(ErrorOut, 404)
async def resume_schedule(schedule_id: str) -> Response:
    """Resume a schedule: it fires next at its first slot from now (what it slept through
    is not fired)."""
    return json_response((await api().runtime.resume_schedule(schedule_id)).to_dict())


@bp.post("/schedules/<schedule_id>/run")
@needs("operate")
@document_response(TaskOut, 201)
@document_response(ErrorOut, 404)
async def run_schedule(schedule_id: str) -> Response:
    """Fire a schedule now, outside its slots (paused or not): answers 201 with the task.

    Its slots do not move, and every call creates a new task."""
    task = await api().runtime.run_schedule(schedule_id)
    return json_response(task.to_dict(), 201)


async def _body(model: type[M]) -> M:
    """The request body as ``model``; a 400 naming the field otherwise."""
    raw = await request.get_data(as_text=False)  # a 413 past the size limit
    data = parse_json(raw.encode() if isinstance(raw, str) else raw)
    if not isinstance(data, dict):
        raise ApiError(400, "validation_error", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from None


async def _saved(
    runtime: Runtime, saving: Awaitable[Schedule], name: str | None, schedule_id: str = ""
) -> Schedule:
    """The schedule ``saving`` stores, with its errors said for this API: the field of an
    unknown task type is ``task_type``, and a name another schedule has is a 409."""
    try:
        return await saving
    except UnknownTaskType as exc:
        raise ApiError(400, "unknown_task_type", str(exc), field="task_type") from None
    except ValidationError as exc:
        if exc.field == "name" and name is not None:
            others = await runtime.list_schedules()
            if any(other.name == name and other.id != schedule_id for other in others):
                raise ApiError(409, "already_exists", str(exc), field="name") from None
        raise
