"""The app factory: a Quart-Trio app over a running :class:`~trellis_actors.Runtime`."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable

import structlog
from prometheus_client import CollectorRegistry
from quart import Blueprint, Quart, Request, Response, g, request
from quart.sessions import NullSession, SecureCookieSessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from quart_schema import Info, QuartSchema, hide
from quart_trio import QuartTrio

from .. import __version__
from ..access.tokens import Scope
from ..observability.metrics import Metrics
from ..rules import MAX_PAGE_BYTES
from ..runtime.runtime import Runtime
from ..ui import SessionPolicy, register_ui
from . import docs, errors
from ._state import DEFAULT_MAX_EVENT_STREAMS, ApiState, attach
from .auth import Auth, Refused, declare
from .guard import Guard
from .openapi import TrellisOpenAPI
from .routes import bulk, events, schedules, system, tasks, workflows

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
    sessions: SessionPolicy | None = None,
    guard: Guard | None = None,
    max_page_bytes: int = MAX_PAGE_BYTES,
    max_event_streams: int = DEFAULT_MAX_EVENT_STREAMS,
) -> QuartTrio:
    """The HTTP API of ``runtime``, which must be running while the app serves.

    ``registry`` is what ``GET /metrics`` exposes (observability registers its metrics
    there); ``auth`` sets the API token; ``max_body`` bounds request bodies (bytes);
    ``blueprints`` are mounted too; ``metrics`` (whose registry then is the one exposed)
    also counts requests; ``ui`` mounts the web UI under ``/ui``, whose login sessions
    last as ``sessions`` says; ``guard`` says which
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
        swagger_ui_path=None,  # our own page below: local assets, no CDN
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}] if auth.enabled else None,
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
        endpoint = request.endpoint or ""
        if endpoint.startswith(UI_ENDPOINTS) or (ui and not endpoint and _in_ui(request.path)):
            return None  # the web UI checks its login session against the same scopes
        view = app.view_functions.get(endpoint) if request.url_rule is not None else None
        try:
            g.trellis_grant = auth.check(
                auth.scope_of(view), auth.bearer(request), known=request.url_rule is not None
            )
        except Refused as refused:
            raise refusal(refused) from None
        return None

    @app.after_request
    async def no_sniff(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}  # one look, not one a header
        for header, value in SECURITY_HEADERS.items():
            if header.lower() not in present:
                headers.add(header, value)
        if "content-security-policy" not in present and not _is_page(request.path):
            headers.add("Content-Security-Policy", API_CSP)
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

    app.register_blueprint(docs.bp)

    @hide  # the page is not part of the API it documents
    async def swagger_ui() -> Response:
        return docs.page("Trellis API", ui)

    app.add_url_rule("/docs", "swagger_ui", swagger_ui)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(system.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(schedules.bp)
    app.register_blueprint(bulk.bp)
    app.register_blueprint(workflows.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if ui:
        register_ui(app, runtime, auth=auth, sessions=sessions)
    declare(app, "openapi", Scope.READ)
    declare(app, "swagger_ui", Scope.PUBLIC)  # a page that loads /openapi.json with a token
    declare(app, "api_docs.static", Scope.PUBLIC)  # Swagger UI's script and styles
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
    return given if _REQUEST_ID.fullmatch(given) else os.urandom(8).hex()


def _is_page(path: str) -> bool:
    """Paths that answer HTML pages with their own policy: the UI and the API docs."""
    return path in ("/", "/ui", "/docs") or path.startswith("/ui/")


#: Endpoints of the web UI, which checks its own login session (see trellis_actors.ui).
UI_ENDPOINTS = ("trellis_ui.", "trellis_ui_home")


def _in_ui(path: str) -> bool:
    """A path of the web UI (no route matched it: its 404 or 405 needs no token)."""
    return path == "/ui" or path.startswith("/ui/")


def refusal(refused: Refused) -> errors.ApiError:
    """The API's answer to a refused request: 401 with a challenge, or 403; both name the
    scope that was needed."""
    scope = None if refused.scope is None else refused.scope.value
    if refused.status == 401:
        challenge = 'Bearer realm="trellis"' + (f', scope="{scope}"' if scope else "")
        headers = {"WWW-Authenticate": challenge}
        message = refused.message + " in an 'Authorization: Bearer <token>' header"
        return errors.ApiError(401, "unauthorized", message, scope=scope, headers=headers)
    return errors.ApiError(403, "forbidden", refused.message, scope=scope)


class _NoSessions(SecureCookieSessionInterface):
    """Trellis keeps nothing in Quart's session (the UI signs its own cookie): every request
    gets one shared, empty and read-only session instead of a cookie lookup, a new object
    and a save."""

    _none = NullSession()

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> NullSession:
        return self._none

    async def save_session(self, app: Quart, session: SessionMixin, response: object) -> None:
        return None
