"""``GET /events``: lifecycle transitions as server-sent events, as they happen."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from quart import Blueprint, Response
from quart_schema import document_querystring

from ...lifecycle import Transition
from .._encode import encode
from .._parse import parse_query
from .._state import ApiState, api
from ..auth import needs
from ..errors import ApiError
from ..openapi import media_type
from ..schemas import EventsQuery, TransitionOut

bp = Blueprint("events", __name__)


@bp.get("/events")
@needs("read")
@document_querystring(EventsQuery)
@media_type(
    ("text/event-stream",),
    "A stream of server-sent events. Each transition is an event named ``transition`` whose "
    '``data`` is one line of JSON: ``{"event": {...}, "task": {...}}`` (see TransitionOut). '
    "Lines starting with ``:`` are keep-alive comments.",
    TransitionOut,
)
async def events() -> Response:
    """Lifecycle transitions as server-sent events, optionally of one task or one type."""
    query = parse_query(EventsQuery)
    state = api()
    if state.closing.is_set():
        raise ApiError(503, "unavailable", "the server is shutting down")
    body = _stream(state, query.task_id, query.type)
    response = Response(
        body,
        200,
        {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        content_type="text/event-stream",
    )
    response.timeout = None  # a stream has no end to wait for
    return response


async def _stream(state: ApiState, task_id: str | None, type: str | None) -> AsyncIterator[bytes]:
    async with state.runtime.subscribe() as transitions:
        # The first chunk tells the client that it is subscribed: nothing after it is missed.
        yield b"retry: 2000\n: subscribed\n\n"
        while not state.closing.is_set():
            # A fresh scope per wait (never across a yield): the heartbeat deadline, and
            # cancelled by ApiState.close() when the server stops.
            scope = trio.CancelScope(deadline=trio.current_time() + state.heartbeat)
            moved: Transition | None = None
            state.waiting.add(scope)
            try:
                with scope:
                    moved = await transitions.__anext__()
            except StopAsyncIteration:
                return
            finally:
                state.waiting.discard(scope)
            if moved is None:
                if not state.closing.is_set():
                    yield b": keep-alive\n\n"
            elif (task_id is None or moved.event.task_id == task_id) and (
                type is None or moved.task.type == type
            ):
                yield sse_event(moved)


def sse_event(moved: Transition) -> bytes:
    """One server-sent event for a transition."""
    data = encode({"event": moved.event.to_dict(), "task": moved.task.to_dict()})
    return b"event: transition\ndata: " + data + b"\n\n"
