"""``/tasks``: submit (one or a batch), list, read, history, wait, cancel, requeue."""

from __future__ import annotations

import pydantic
import trio
from quart import Blueprint, Response, g, request
from quart_schema import document_querystring, document_request, document_response

from ...access.tokens import Grant
from ...errors import TrellisError, WaitTimeout
from ...rules import TASK_DATA, check_include
from ...runtime.runtime import Runtime
from ...stores.base import NewTask
from .._encode import TaskEncoder, json_response
from .._encode import encode as encode_json
from .._parse import parse_json, parse_query
from .._state import api
from ..auth import needs
from ..errors import ApiError, from_pydantic, from_trellis
from ..schemas import (
    MAX_BATCH,
    MAX_WAIT,
    ErrorOut,
    EventList,
    ListQuery,
    SubmitBatch,
    SubmitBody,
    SubmitTask,
    SubmittedOut,
    TaskOut,
    TaskPage,
    WaitQuery,
)

bp = Blueprint("tasks", __name__)

_BATCH: pydantic.TypeAdapter[list[SubmitTask]] = pydantic.TypeAdapter(SubmitBatch)
_REQUIRED = frozenset({"type", "payload"})


def new_task(runtime: Runtime, item: SubmitTask, index: int | None = None) -> NewTask:
    """Check one submission with the runtime's rules and resolve it against the task
    types; ``index`` within a batch."""
    fields = {
        name: value
        for name in item.model_fields_set - _REQUIRED
        if (value := getattr(item, name)) is not None
    }
    grant: Grant | None = g.get("trellis_grant")
    where = "" if index is None else f"item {index}: "
    # The type first (a limited token learns nothing of other types), then the queue the
    # task resolves to (the type's default when none is given).
    if grant is not None and (refusal := grant.refusal(item.type, None)):
        raise ApiError(403, "forbidden", where + refusal, scope="submit")
    try:
        task = runtime.new_task(item.type, item.payload, **fields)
    except TrellisError as exc:
        error = from_trellis(exc)
        if index is not None:
            error.message = f"item {index}: {error.message}"
            error.field = f"[{index}].{error.field}" if error.field else f"[{index}]"
        raise error from None
    if grant is not None and (refusal := grant.refusal(task.type, task.queue)):
        raise ApiError(403, "forbidden", where + refusal, scope="submit")
    return task


@bp.post("/tasks")
@needs("submit")
@document_request(SubmitBody)
@document_response(SubmittedOut, 201)
@document_response(TaskOut, 200)
@document_response(ErrorOut, 400)
@document_response(ErrorOut, 413)
async def submit_tasks() -> Response:
    """Submit a task, or a batch of tasks.

    A JSON object submits one task and answers 201 with it; a repeat of an
    ``idempotency_key`` answers 200 with the task already stored. A JSON array of at most
    1,000 such objects submits them together in one commit and answers 201 with the list.
    Everything is validated before anything is stored: a rejected request stores nothing.
    """
    runtime = api().runtime
    raw = await request.get_data(as_text=False)  # a 413 past the size limit
    body = raw.encode() if isinstance(raw, str) else raw
    data = parse_json(body)
    if isinstance(data, dict):
        try:
            item = SubmitTask.model_validate(data)
        except pydantic.ValidationError as exc:
            raise from_pydantic(exc) from None
        ((task, created),) = await runtime.enqueue([new_task(runtime, item)])
        return json_response(TaskEncoder()(task), 201 if created else 200)
    if isinstance(data, list):
        if len(data) > MAX_BATCH:
            raise ApiError(
                400, "validation_error", f"a batch holds at most {MAX_BATCH} tasks, not {len(data)}"
            )
        try:
            items = _BATCH.validate_python(data)
        except pydantic.ValidationError as exc:
            raise from_pydantic(exc) from None
        tasks = [new_task(runtime, item, index) for index, item in enumerate(items)]
        submitted = await runtime.enqueue(tasks)
        encode = TaskEncoder()
        return json_response([encode(s.task) for s in submitted], 201)
    raise ApiError(
        400, "validation_error", "the body must be a task object or an array of task objects"
    )


@bp.get("/tasks")
@needs("read")
@document_querystring(ListQuery)
@document_response(TaskPage)
@document_response(ErrorOut, 400)
async def list_tasks() -> Response:
    """List tasks, newest first, filtered by status, type and queue; paged by cursor.

    Each task is a summary, without its payload and result, unless ``include`` names
    them (``include=payload,result``). A page stops before its body would pass the
    server's byte cap (8 MiB by default), holding one task at least: it may then hold
    fewer than ``limit`` tasks, and its ``next_cursor`` points at the rest.
    """
    query = parse_query(ListQuery)
    state = api()
    try:
        include = check_include(query.include)
    except TrellisError as exc:
        raise from_trellis(exc) from None
    page = await state.runtime.list(
        status=query.status,
        type=query.type,
        queue=query.queue,
        limit=query.limit,
        cursor=query.cursor,
        include=include,
        max_bytes=state.max_page_bytes if include else None,
    )
    encode = TaskEncoder()
    dropped = TASK_DATA - include
    chunks: list[bytes] = []
    size = 0
    next_cursor = page.next_cursor
    for index, task in enumerate(page.items):
        item = encode(task)
        for name in dropped:
            del item[name]
        chunk = encode_json(item)
        size += len(chunk) + 1
        if chunks and size > state.max_page_bytes:  # the rest on the next page
            next_cursor = page.items[index - 1].id
            break
        chunks.append(chunk)
    cursor = encode_json(next_cursor)
    body = b'{"items":[' + b",".join(chunks) + b'],"next_cursor":' + cursor + b"}"
    return Response(body, 200, content_type="application/json")


@bp.get("/tasks/<task_id>")
@needs("read")
@document_response(TaskOut)
@document_response(ErrorOut, 404)
async def get_task(task_id: str) -> Response:
    """One task: status, attempt, timestamps, result, error and progress."""
    return json_response((await api().runtime.get(task_id)).to_dict())


@bp.get("/tasks/<task_id>/events")
@needs("read")
@document_response(EventList)
@document_response(ErrorOut, 404)
async def task_events(task_id: str) -> Response:
    """A task's history: every transition, oldest first."""
    events = await api().runtime.events(task_id)
    return json_response({"items": [event.to_dict() for event in events]})


@bp.get("/tasks/<task_id>/wait")
@needs("read")
@document_querystring(WaitQuery)
@document_response(TaskOut)
@document_response(ErrorOut, 400)
@document_response(ErrorOut, 404)
async def wait_task(task_id: str) -> Response:
    """Wait for a task to end (a long poll): answers as soon as it is completed, failed,
    dead or cancelled, or else once ``timeout`` seconds (at most 30) have passed. Either
    way the answer is the task: its ``status`` tells which. Wait again for longer. A
    server that begins to stop answers at once."""
    timeout = min(parse_query(WaitQuery).timeout, MAX_WAIT)
    state = api()
    # A server that stops answers at once, as it ends event streams, rather than hold
    # its shutdown for the rest of the wait.
    with trio.CancelScope() as scope:
        if state.closing.is_set():
            scope.cancel()
        state.waiting.add(scope)
        try:
            return json_response((await state.runtime.wait(task_id, timeout=timeout)).to_dict())
        except WaitTimeout:
            pass
        finally:
            state.waiting.discard(scope)
    return json_response((await state.runtime.get(task_id)).to_dict())


@bp.delete("/tasks/<task_id>")
@needs("operate")
@document_response(TaskOut)
@document_response(ErrorOut, 404)
@document_response(ErrorOut, 409)
async def cancel_task(task_id: str) -> Response:
    """Cancel a task; a running task's handler is cancelled. 409 when it has already ended."""
    return json_response((await api().runtime.cancel(task_id)).to_dict())


@bp.post("/tasks/<task_id>/requeue")
@needs("operate")
@document_response(TaskOut)
@document_response(ErrorOut, 404)
@document_response(ErrorOut, 409)
async def requeue_task(task_id: str) -> Response:
    """Send a dead task back to the queue, its attempts starting again. 409 unless dead."""
    runtime = api().runtime
    return json_response((await runtime.requeue(task_id)).to_dict())
