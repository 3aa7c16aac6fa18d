"""Rendering: one Jinja environment of the UI's own, autoescaping always on.

The UI does not use the app's template environment, so its templates cannot clash with the
host app's, and escaping does not depend on file extensions: every value a template prints
is escaped unless the template says otherwise (none does with user data).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from quart import Response, g, request, url_for

from .._time import iso as _iso
from .._time import moment
from ..access.tokens import ANYONE, Grant, Scope
from ..stores import redact
from ._security import CSRF_FIELD, CSRF_HEADER
from ._state import ui

_ENV = Environment(
    loader=PackageLoader("trellis_actors.ui", "templates"),
    autoescape=True,
    enable_async=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: Shown for a stored time that is no date (beyond year 9999, say).
OUT_OF_RANGE = "(time out of range)"


def when(at: float | None) -> str:
    """``2024-05-01 12:00:03 UTC``; a dash for no time; a marker for a stored time that
    is no date (out of datetime's range)."""
    if at is None:
        return "—"
    shown = moment(at)
    return OUT_OF_RANGE if shown is None else shown.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(at: float | None) -> str:
    return _iso(at) or ""


def seconds(value: float | None) -> str:
    """A duration, short: ``850ms``, ``12s``, ``4m 10s``, ``2h 5m``."""
    if value is None or not math.isfinite(value):
        return "—"
    value = abs(value)
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def ago(at: float | None) -> str:
    """``12s ago`` or ``in 4m 10s``."""
    if at is None:
        return ""
    if moment(at) is None:
        return OUT_OF_RANGE
    delta = time.time() - at
    if abs(delta) < 1:
        return "now"
    return f"{seconds(delta)} ago" if delta > 0 else f"in {seconds(delta)}"


def pretty(value: Any) -> str:
    """Indented JSON, as text (escaped when printed)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


_ENV.filters.update(when=when, iso=iso, seconds=seconds, ago=ago, pretty=pretty, redact=redact)
_ENV.globals.update(url_for=url_for, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER)


def is_htmx() -> bool:
    """Whether HTMX made this request (it wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def _can(scope: str) -> bool:
    """Whether this request's login may do what needs ``scope`` (pages hide the rest)."""
    grant: Grant = g.get("trellis_grant", ANYONE)
    return grant.allows(Scope(scope))


def _who() -> str | None:
    """The name of the token this request's session logged in with (None: no session)."""
    grant: Grant = g.get("trellis_grant", ANYONE)
    return None if grant is ANYONE else grant.name


async def render_text(name: str, **context: Any) -> str:
    state = ui()
    base = {
        "csrf_token": g.trellis_ui_csrf,
        "login_required": state.guard.required,
        "can": _can,
        "who": _who(),
        "node": state.runtime.node,
        "path": request.path,
    }
    return await _ENV.get_template(name).render_async({**base, **context})


async def render(name: str, status: int = 200, **context: Any) -> Response:
    html = await render_text(name, **context)
    return Response(html, status, content_type="text/html; charset=utf-8")


@dataclass(frozen=True, slots=True)
class Notice:
    """What an action did, shown above the part it changed; ``task_id`` links a task."""

    ok: bool
    text: str
    task_id: str | None = None


async def render_with_notice(name: str, slot: str, notice: Notice, **context: Any) -> Response:
    """A fragment for HTMX plus, out of band, the notice in its slot: notices live outside
    the polled fragments, so the next poll does not wipe them."""
    html = await render_text(name, **context)
    html += await render_text("_notice.html", slot=slot, notice=notice, oob=True)
    return Response(html, 200, content_type="text/html; charset=utf-8")


def go(location: str) -> Response:
    """A ``303 See Other``: post/redirect/get for forms sent without HTMX."""
    return Response("", 303, headers={"Location": location})


def see_other(endpoint: str, **values: Any) -> Response:
    return go(url_for(endpoint, **values))
