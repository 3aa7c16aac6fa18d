"""``/workflows``: read a workflow with its history and steps; send it a signal."""

from __future__ import annotations

from quart import Blueprint, Response, g, request
from quart_schema import document_request, document_response

from ..._time import Clock, iso
from ...access.tokens import Grant
from .._encode import json_response
from .._parse import parse_json
from .._state import api
from ..auth import needs
from ..errors import ApiError
from ..schemas import ErrorOut, SignalBody, SignalOut, WorkflowOut

bp = Blueprint("workflows", __name__)


@bp.get("/workflows/<workflow_id>")
@needs("read")
@document_response(WorkflowOut)
@document_response(ErrorOut, 404)
@document_response(ErrorOut, 409)
async def get_workflow(workflow_id: str) -> Response:
    """A workflow: its task, its history (steps with their tasks, sleeps with their wake
    times, signal waits with their outcomes, recorded values), the signals sent to it
    and its steps' tasks. 409 for a task that is not a workflow."""
    state = await api().runtime.workflow(workflow_id)
    return json_response(state.to_dict())


@bp.post("/workflows/<workflow_id>/signals/<name>")
@needs("submit")
@document_request(SignalBody)
@document_response(SignalOut, 202)
@document_response(ErrorOut, 400)
@document_response(ErrorOut, 404)
@document_response(ErrorOut, 409)
async def send_signal(workflow_id: str, name: str) -> Response:
    """Send a workflow the signal ``name``; the JSON body is its payload (an empty body
    sends ``null``).

    Answers 202 once the signal is kept: the workflow receives it at its next
    ``wf.wait_signal(name)``, or at once if it waits for it now. Signals of one name are
    received in the order sent, each once. 404 for an unknown id; 409 for a workflow that
    has ended or a task that is not a workflow. A token limited to some task types or
    queues may signal only workflows of those.
    """
    runtime = api().runtime
    raw = await request.get_data(as_text=False)
    body = raw.encode() if isinstance(raw, str) else raw
    payload = parse_json(body) if body.strip() else None
    grant: Grant | None = g.get("trellis_grant")
    if grant is not None:
        task = await runtime.get(workflow_id)
        if refusal := grant.refusal(task.type, task.queue):
            raise ApiError(403, "forbidden", refusal, scope="submit")
    await runtime.signal(workflow_id, name, payload)
    sent_at = iso(Clock().now())
    return json_response(
        {"workflow_id": workflow_id, "name": name, "payload": payload, "sent_at": sent_at}, 202
    )
