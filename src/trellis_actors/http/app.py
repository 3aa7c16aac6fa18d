"""The app factory: a Quart-Trio app over a running :class:`~trellis_actors.Runtime`."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

import structlog
from prometheus_client import CollectorRegistry
from quart import Blueprint, Quart, Request, Response, g, request
from quart.sessions import NullSession, SecureCookieSessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from .. import __version__
from ..observability.metrics import Metrics
from ..rules import MAX_PAGE_BYTES
from ..runtime.runtime import Runtime
from ..ui import register_ui
from . import errors
from ._state import DEFAULT_MAX_EVENT_STREAMS, ApiState, attach
from .auth import Auth
from .guard import Guard
from .openapi import TrellisOpenAPI
from .routes import events, schedules, system, tasks

#: Largest request body accepted unless told otherwise (``413`` beyond).
DEFAULT_MAX_BODY = 1024 * 1024


def create_app(
    runtime: Runtime,
    *,
    registry: CollectorRegistry | None = None,
    auth: Auth | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    blueprints: Iterable[Blueprint] = (),
    metrics: Metrics | None = None,
    ui: bool = True,
    guard: Guard | None = None,
    max_page_bytes: int = MAX_PAGE_BYTES,
    max_event_streams: int = DEFAULT_MAX_EVENT_STREAMS,
) -> QuartTrio:
    """The HTTP API of ``runtime``, which must be running while the app serves.

    ``registry`` is what ``GET /metrics`` exposes (observability registers its metrics
    there); ``auth`` sets the API token; ``max_body`` bounds request bodies (bytes);
    ``blueprints`` are mounted too; ``metrics`` (whose registry then is the one exposed)
    also counts requests; ``ui`` mounts the web UI under ``/ui``; ``guard`` says which
    hosts the server answers to and which other origins may use it (by default: IP
    addresses and ``localhost``, and no other origin; see :mod:`trellis_actors.http.guard`).
    ``max_page_bytes`` caps the body of a page of ``GET /tasks``; ``max_event_streams``
    the event streams open at once.
    """
    if max_body < 1:
        raise ValueError("max_body must be at least 1 byte")
    app = QuartTrio("trellis_actors.http", static_folder=None)
    app.session_interface = _NoSessions()
    app.config.update(
        MAX_CONTENT_LENGTH=max_body,
        RESPONSE_TIMEOUT=60,
        BODY_TIMEOUT=60,
        PROVIDE_AUTOMATIC_OPTIONS=False,  # OPTIONS would answer outside the documented API
    )
    auth = auth or Auth()
    guard = guard or Guard()
    make_response = app.make_response
    QuartSchema(
        app,
        info=Info(
            title="Trellis API",
            version=__version__,
            description="Submit, watch and manage background tasks run by a Trellis node.",
        ),
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}] if auth.token is not None else None,
        openapi_provider_class=TrellisOpenAPI,
    )
    # quart-schema wraps make_response to turn returned models into JSON; every handler
    # here returns a Response already, so the plain (cheaper) one is put back.
    app.make_response = make_response  # type: ignore[method-assign]
    if metrics is not None:
        registry = metrics.registry
    state = ApiState(runtime, registry or CollectorRegistry(), auth, metrics)
    state.max_page_bytes = max_page_bytes
    state.max_event_streams = max_event_streams
    attach(app.extensions, state)
    errors.install(app)

    @app.before_request
    async def check_auth() -> Response | None:
        g.started = time.perf_counter()
        g.request_id = request_id(request)
        structlog.contextvars.bind_contextvars(request_id=g.request_id)
        preflight = guard.check(request)
        if preflight is not None:
            return preflight
        auth.check(request)
        return None

    @app.after_request
    async def no_sniff(response: Response) -> Response:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if not _is_page(request.path):
            response.headers.setdefault("Content-Security-Policy", API_CSP)
        if (rid := getattr(g, "request_id", None)) is not None:
            response.headers["X-Request-ID"] = rid
        guard.decorate(request, response)
        if metrics is not None:
            rule = request.url_rule
            route = rule.rule if rule is not None else "unmatched"
            started = getattr(g, "started", None)
            seconds = 0.0 if started is None else time.perf_counter() - started
            metrics.observe_request(request.method, route, response.status_code, seconds)
        return response

    app.register_blueprint(tasks.bp)
    app.register_blueprint(system.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(schedules.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if ui:
        register_ui(app, runtime, token=auth.token)
    return app


#: Headers on every answer (the UI's pages set their own CSP).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: The CSP of API answers: JSON is never a page, so nothing may load or frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id(request: Request) -> str:
    """The request's id: the client's ``X-Request-ID`` when it is a short token, else a
    new one. Error bodies and the request's log lines carry it."""
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]


def _is_page(path: str) -> bool:
    """Paths that answer HTML pages with their own policy: the UI and the API docs."""
    return path in ("/", "/ui", "/docs") or path.startswith("/ui/")


class _NoSessions(SecureCookieSessionInterface):
    """Trellis keeps nothing in Quart's session (the UI signs its own cookie): every request
    gets one shared, empty and read-only session instead of a cookie lookup, a new object
    and a save."""

    _none = NullSession()

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> NullSession:
        return self._none

    async def save_session(self, app: Quart, session: SessionMixin, response: object) -> None:
        return None
