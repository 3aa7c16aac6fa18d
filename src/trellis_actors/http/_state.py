"""What every request handler reaches: the runtime facade and the app's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import trio
from prometheus_client import CollectorRegistry
from quart import current_app

from ..app import App
from ..observability.metrics import Metrics
from ..rules import MAX_PAGE_BYTES
from ..runtime.events import FOLLOW_BUFFER
from ..runtime.runtime import Runtime
from .auth import Auth

_KEY = "trellis"
#: Most event streams (``GET /events``) a server holds open at once, by default.
DEFAULT_MAX_EVENT_STREAMS = 100


@dataclass(slots=True)
class ApiState:
    """Per app: handlers reach the actors only through ``runtime`` (refs, messages)."""

    runtime: Runtime
    registry: CollectorRegistry
    auth: Auth
    #: Fed by the lifecycle stream; its gauges are refreshed before each scrape.
    metrics: Metrics | None = None
    #: Set when the server starts shutting down: long-lived streams (SSE) end then.
    closing: trio.Event = field(default_factory=trio.Event)
    #: Seconds between SSE keep-alive comments.
    heartbeat: float = 15.0
    #: The scope each open event stream is waiting in, cancelled by :meth:`close`.
    waiting: set[trio.CancelScope] = field(default_factory=set)
    #: Most bytes of one page of ``GET /tasks`` (the rest is on the next page).
    max_page_bytes: int = MAX_PAGE_BYTES
    #: Most event streams open at once; more are refused with 503.
    max_event_streams: int = DEFAULT_MAX_EVENT_STREAMS
    #: Event streams open now.
    event_streams: int = 0
    #: Batches read for an event stream that may wait unsent (the rest waits in the store).
    event_buffer: int = FOLLOW_BUFFER

    @property
    def app(self) -> App:
        """The task types being served (static configuration, read without a message)."""
        return self.runtime.app

    def close(self) -> None:
        """The server is stopping: end every event stream now, and refuse new ones."""
        self.closing.set()
        for scope in self.waiting:
            scope.cancel()


def api() -> ApiState:
    """The state of the app handling the current request."""
    return cast(ApiState, current_app.extensions[_KEY])


def attach(app_extensions: dict[str, object], state: ApiState) -> None:
    app_extensions[_KEY] = state


def state_of(app_extensions: dict[str, object]) -> ApiState:
    return cast(ApiState, app_extensions[_KEY])
