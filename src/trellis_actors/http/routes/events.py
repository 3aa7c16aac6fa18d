"""``GET /events``: lifecycle transitions as server-sent events, as they happen."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import trio
from quart import Blueprint, Response
from quart_schema import document_querystring, document_response

from ...lifecycle import Transition
from .._encode import encode
from .._parse import parse_query
from .._state import ApiState, api
from ..auth import needs
from ..errors import ApiError
from ..openapi import media_type
from ..schemas import ErrorOut, EventsQuery, TransitionOut

bp = Blueprint("events", __name__)

#: Seconds a client refused for want of a stream slot is asked to wait.
RETRY_AFTER = 5


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
@document_response(ErrorOut, 503)
async def events() -> Response:
    """Lifecycle transitions as server-sent events, optionally of one task, one workflow
    (its own and its steps') or one type.

    A server holds a limited number of streams open at once (100 by default): past it,
    503 with ``Retry-After``. A reader so slow that it falls a whole buffer behind is
    dropped: its stream ends with an event named ``dropped`` whose data says why;
    connect again to go on (what happened meanwhile is in ``GET /tasks``).
    """
    query = parse_query(EventsQuery)
    state = api()
    if state.closing.is_set():
        raise ApiError(503, "unavailable", "the server is shutting down")
    if state.event_streams >= state.max_event_streams:
        raise ApiError(
            503,
            "too_many_streams",
            f"this server holds at most {state.max_event_streams} event streams open at "
            "once; try again later",
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    body = _Held(state, _stream(state, query))
    response = Response(
        body,
        200,
        {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        content_type="text/event-stream",
    )
    response.timeout = None  # a stream has no end to wait for
    return response


class _Held:
    """An event stream's body, holding one of the server's stream slots until it is
    closed (or, never started, collected)."""

    def __init__(self, state: ApiState, body: AsyncGenerator[bytes]) -> None:
        self._state: ApiState | None = state
        self._body = body
        state.event_streams += 1

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> bytes:
        return await self._body.__anext__()

    async def aclose(self) -> None:
        self._release()
        await self._body.aclose()

    def _release(self) -> None:
        if self._state is not None:
            self._state.event_streams -= 1
            self._state = None

    def __del__(self) -> None:
        self._release()


async def _stream(state: ApiState, query: EventsQuery) -> AsyncGenerator[bytes]:
    async with state.runtime.subscribe(state.event_buffer) as transitions:
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
                if transitions.dropped is not None:
                    yield (
                        b"event: dropped\ndata: "
                        + encode({"reason": transitions.dropped})
                        + b"\n\n"
                    )
                return
            finally:
                state.waiting.discard(scope)
            if moved is None:
                if not state.closing.is_set():
                    yield b": keep-alive\n\n"
            elif wanted(moved, query):
                yield sse_event(moved)


def wanted(moved: Transition, query: EventsQuery) -> bool:
    """Whether ``moved`` passes the stream's filters."""
    task = moved.task
    return (
        (query.task_id is None or task.id == query.task_id)
        and (query.type is None or task.type == query.type)
        and (
            query.workflow_id is None
            or task.id == query.workflow_id
            or task.parent_id == query.workflow_id
        )
    )


def sse_event(moved: Transition) -> bytes:
    """One server-sent event for a transition."""
    data = encode({"event": moved.event.to_dict(), "task": moved.task.to_dict()})
    return b"event: transition\ndata: " + data + b"\n\n"
