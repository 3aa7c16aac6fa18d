"""``/tasks/bulk/*``: cancel, requeue or purge every task a filter selects."""

from __future__ import annotations

import pydantic
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response

from ...decisions import Bulk
from .._encode import json_response
from .._parse import parse_json
from .._state import api
from ..auth import needs
from ..errors import from_pydantic
from ..schemas import BulkFilter, BulkOut, ErrorOut

bp = Blueprint("bulk", __name__)


async def _bulk(action: Bulk) -> Response:
    raw = await request.get_data(as_text=False)
    body = raw.encode() if isinstance(raw, str) else raw
    try:
        query = BulkFilter.model_validate(parse_json(body) if body.strip() else {})
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from None
    runtime = api().runtime
    filter = query.model_dump(exclude={"dry_run"}, exclude_none=True)
    touched = await runtime.bulk(action, dry_run=query.dry_run, **filter)
    return json_response({"touched": touched, "dry_run": query.dry_run})


@bp.post("/tasks/bulk/cancel")
@needs("operate")
@document_request(BulkFilter)
@document_response(BulkOut)
@document_response(ErrorOut, 400)
async def cancel_many() -> Response:
    """Cancel every pending, queued, retrying, running or waiting task the filter selects; running
    handlers are stopped (on other nodes, at their next lease renewal). Answers how many."""
    return await _bulk(Bulk.CANCEL)


@bp.post("/tasks/bulk/requeue")
@needs("operate")
@document_request(BulkFilter)
@document_response(BulkOut)
@document_response(ErrorOut, 400)
async def requeue_many() -> Response:
    """Send every dead task the filter selects back to its queue, attempts starting again.
    Answers how many."""
    return await _bulk(Bulk.REQUEUE)


@bp.post("/tasks/bulk/purge")
@needs("admin")
@document_request(BulkFilter)
@document_response(BulkOut)
@document_response(ErrorOut, 400)
async def purge_many() -> Response:
    """Delete every ended task (completed, failed, dead, cancelled) the filter selects,
    with its history. Answers how many."""
    return await _bulk(Bulk.PURGE)
