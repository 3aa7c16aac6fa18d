"""``GET /events``: every node's lifecycle transitions as server-sent events, each with
its event id, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

import trio
from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_response

from ... import rules
from ...lifecycle import Recorded
from .._encode import encode
from .._parse import parse_query
from .._state import ApiState, api
from ..auth import needs
from ..errors import ApiError
from ..openapi import media_type
from ..schemas import ErrorOut, EventsQuery, TransitionOut

bp = Blueprint("events", __name__)

_DIGITS = re.compile(r"[0-9]{1,19}")

#: Seconds a client refused for want of a stream slot is asked to wait.
RETRY_AFTER = 5


@bp.get("/events")
@needs("read")
@document_querystring(EventsQuery)
@media_type(
    ("text/event-stream",),
    "A stream of server-sent events. Each transition is an event named ``transition`` with "
    "an ``id`` (its event id: send it back as ``Last-Event-ID`` to resume after it) and a "
    '``data`` of one line of JSON: ``{"event": {...}, "task": {...}}`` (see TransitionOut; '
    "the task as it stood when the event was read). Lines starting with ``:`` are "
    "keep-alive comments.",
    TransitionOut,
)
@document_response(ErrorOut, 503)
async def events() -> Response:
    """Every node's transitions as server-sent events, optionally of one task, one
    workflow (its own and its steps') or one type.

    Each event has an ``id:``; a client that connects again with the header
    ``Last-Event-ID`` (browsers' ``EventSource`` send it) or ``?after=`` gets exactly the
    events after that one, none twice, none lost (an id older than the retention resumes
    at the oldest event kept). Without either, the stream starts from now. A server holds
    a limited number of streams open at once (100 by default): past it, 503 with
    ``Retry-After``. A slow reader is not dropped: what it has not read yet waits in the
    store.
    """
    query = parse_query(EventsQuery)
    after = _resume_after(query.after)
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
    body = _Held(state, _stream(state, query, after))
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


def _resume_after(after: int | None) -> int | None:
    """The event id to resume after: the ``Last-Event-ID`` header (sent by a reconnecting
    ``EventSource``, so newer than the URL's query), else ``?after=``, else None (now)."""
    header = request.headers.get("Last-Event-ID")
    if header is None:
        return after
    digits = header.strip()
    # Digits only (int() would take "1_000", "+1" or other scripts' digits too).
    value: object = int(digits) if _DIGITS.fullmatch(digits) else header
    return rules.check_event_id(value, "Last-Event-ID")


async def _stream(state: ApiState, query: EventsQuery, after: int | None) -> AsyncGenerator[bytes]:
    async with state.runtime.follow(after, buffer=state.event_buffer) as transitions:
        # The first chunk tells the client that it is subscribed: nothing after it is missed.
        # Its id is where the stream starts: a client that reconnects before any event
        # sends it back as Last-Event-ID (an EventSource keeps the id of a block without
        # data too), and misses nothing of what happened meanwhile.
        yield b"retry: 2000\n: subscribed\nid: %d\n\n" % transitions.last_id
        while not state.closing.is_set():
            # A fresh scope per wait (never across a yield): the heartbeat deadline, and
            # cancelled by ApiState.close() when the server stops.
            scope = trio.CancelScope(deadline=trio.current_time() + state.heartbeat)
            moved: Recorded | None = None
            state.waiting.add(scope)
            try:
                with scope:
                    moved = await transitions.__anext__()
            except StopAsyncIteration:  # the runtime stopped
                return
            finally:
                state.waiting.discard(scope)
            if moved is None:
                if not state.closing.is_set():
                    yield b": keep-alive\n\n"
            elif wanted(moved, query):
                yield sse_event(moved)


def wanted(moved: Recorded, query: EventsQuery) -> bool:
    """Whether ``moved`` passes the stream's filters."""
    task = moved.task
    return (
        (query.task_id is None or moved.event.task_id == query.task_id)
        and (query.type is None or task.type == query.type)
        and (
            query.workflow_id is None
            or task.id == query.workflow_id
            or task.parent_id == query.workflow_id
        )
    )


def sse_event(moved: Recorded) -> bytes:
    """One server-sent event for a recorded transition, with its event id."""
    data = encode({"event": moved.event.to_dict(), "task": moved.task.to_dict()})
    return b"id: %d\nevent: transition\ndata: %b\n\n" % (moved.id, data)
