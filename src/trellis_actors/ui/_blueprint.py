"""The UI blueprint, with what runs around every request: login, CSRF, security headers."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, g, request, url_for

from ..access.check import Refused, needs
from ..access.tokens import ANYONE, Grant, Scope
from ._render import go, is_htmx, render
from ._security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    new_nonce,
    safe_next,
    valid_nonce,
)
from ._state import UiState, ui

PREFIX = "/ui"

bp = Blueprint(
    "trellis_ui", __name__, url_prefix=PREFIX, static_folder="static", static_url_path="/static"
)

#: Scripts and styles only from the UI itself: an injected ``<script>`` would not run even
#: if escaping ever failed. (HTMX is told not to inject its indicator ``<style>``.)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
    )


@bp.before_request
async def guard() -> Response | None:
    """CSRF on every POST (403), then the login session and the scope the page needs (a
    redirect to the login form without a session; 403 without the scope)."""
    if request.endpoint == "trellis_ui.static":
        return None
    state = ui()
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce is None or not valid_nonce(nonce):
        nonce = g.trellis_ui_new_nonce = new_nonce()
    g.trellis_ui_csrf = state.guard.csrf_token(nonce)
    g.trellis_grant = ANYONE
    if request.method == "POST":
        given = request.headers.get(CSRF_HEADER) or (await request.form).get(CSRF_FIELD)
        if not state.guard.csrf_ok(request.cookies.get(CSRF_COOKIE), given):
            refused = await render(
                "error.html",
                403,
                title="Form expired",
                message="This form did not come from this page or has expired. "
                "Reload the page and try again.",
            )
            if is_htmx():  # our own page with a stale token: reload it for a fresh one
                refused.headers["HX-Refresh"] = "true"
            return refused
    auth = state.guard.auth
    view = current_app.view_functions.get(request.endpoint or "")
    scope = auth.scope_of(view)
    try:
        g.trellis_grant = auth.check(scope, await _session_grant(state, scope))
    except Refused as refused:
        if refused.status == 403:
            return await render("error.html", 403, title="Not allowed", message=refused.message)
        return _to_login()
    return None


async def _session_grant(state: UiState, scope: Scope | None) -> Grant | None:
    """The grant of the request's login session (None: no live session)."""
    if not state.guard.required or scope is Scope.PUBLIC:
        return None
    session = await state.sessions.find(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    return state.guard.auth.tokens.named(session.token_name)  # None once the token is gone


def _to_login() -> Response:
    if is_htmx():  # a fragment request: send the whole page to the login form
        came_from = request.headers.get("HX-Current-URL", "")
        target = url_for("trellis_ui.login", next=safe_next(_path_of(came_from), ""))
        return Response("", 401, headers={"HX-Redirect": target})
    here = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
    response = go(url_for("trellis_ui.login", next=safe_next(here, "")))
    if SESSION_COOKIE in request.cookies:  # an ended session: forget it
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _path_of(url: str) -> str:
    _, _, rest = url.partition("://")
    _, slash, path = rest.partition("/")
    return slash + path


async def not_found_page() -> Response:
    """The UI's 404 page for a path under ``/ui`` that no route matches (the app's error
    handler calls this: no blueprint hook runs for an unmatched path)."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if nonce is None or not valid_nonce(nonce):
        nonce = g.trellis_ui_new_nonce = new_nonce()
    g.trellis_ui_csrf = ui().guard.csrf_token(nonce)
    page = await render(
        "error.html", 404, title="Page not found", message="There is no such page in the UI."
    )
    return await headers(page)


@bp.after_request
async def headers(response: Response) -> Response:
    nonce = g.get("trellis_ui_new_nonce")
    if nonce is not None:
        _cookie(response, CSRF_COOKIE, nonce)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.route("/login", methods=["GET", "POST"])
@needs("public")
async def login() -> Response:
    state = ui()
    guard = state.guard
    home = url_for("trellis_ui.overview")
    if not guard.required:
        return go(home)
    if request.method == "GET":
        target = safe_next(request.args.get("next"), home)
        return await render("login.html", next=target, error=None)
    form = await request.form
    target = safe_next(form.get("next"), home)
    address = request.remote_addr or "unknown"
    wait = guard.limiter.wait(address)
    if wait:
        refused = await render(
            "login.html",
            429,
            next=target,
            error=f"Too many wrong tokens from here. Try again in {wait:.0f} seconds.",
        )
        refused.headers["Retry-After"] = f"{wait:.0f}"
        return refused
    grant = guard.auth.tokens.match(form.get("token", "")) if form.get("token") else None
    if grant is None:
        guard.limiter.failed(address)
        return await render("login.html", 401, next=target, error="That token is not right.")
    # A new id on every login: a session id seen before the login is worth nothing.
    await state.sessions.end(request.cookies.get(SESSION_COOKIE))
    session_id = await state.sessions.start(grant)
    response = go(target)
    _cookie(response, SESSION_COOKIE, session_id, int(state.sessions.policy.absolute))
    return response


@bp.post("/logout")
@needs("public")
async def logout() -> Response:
    """End the session for every node: its cookie is worth nothing afterwards."""
    await ui().sessions.end(request.cookies.get(SESSION_COOKIE))
    response = go(url_for("trellis_ui.login"))
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response
