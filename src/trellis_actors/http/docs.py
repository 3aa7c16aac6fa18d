"""``/docs``: Swagger UI from files shipped with Trellis (no CDN), reading the API document
through the web UI's login session when there is one (the page itself never holds a token).
"""

from __future__ import annotations

import functools
from html import escape
from pathlib import Path

from quart import Blueprint, Response, url_for
from quart_schema import hide
from werkzeug.exceptions import NotFound

#: Swagger UI sets styles inline, so only styles may be inline; scripts are ours and its.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)

_STATIC = Path(__file__).with_name("docs_static")

bp = Blueprint("api_docs", __name__)


#: What the page loads, by name; nothing else in the folder is served.
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@functools.cache
def _asset(filename: str) -> bytes | None:
    """A shipped script or stylesheet, read once (two files, about 2 MB together)."""
    names = {p.name for p in _STATIC.iterdir() if p.suffix in _TYPES}
    return (_STATIC / filename).read_bytes() if filename in names else None


@bp.get("/docs/static/<path:filename>")
@hide  # Swagger UI's own files, not part of the API
async def static(filename: str) -> Response:
    body = _asset(filename)
    if body is None:
        raise NotFound()
    response = Response(body, 200, content_type=_TYPES[Path(filename).suffix])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{css}">
</head>
<body>
  <div id="swagger-ui" data-spec="{spec}" data-session-spec="{session_spec}" data-login="{login}">
  </div>
  <script src="{bundle}"></script>
  <script src="{start}"></script>
</body>
</html>
"""


def page(title: str, ui: bool) -> Response:
    """The docs page; with the web UI mounted (``ui``), it asks the UI for the document
    first, so a logged-in browser reads it without a token."""

    def static(name: str) -> str:
        return url_for("api_docs.static", filename=name)

    html = _PAGE.format(
        title=escape(title),
        css=static("swagger-ui.css"),
        bundle=static("swagger-ui-bundle.js"),
        start=static("docs.js"),
        spec=url_for("openapi"),
        session_spec=url_for("trellis_ui.openapi") if ui else "",
        login=url_for("trellis_ui.login", next="/ui/") if ui else "",
    )
    response = Response(html, 200, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["Cache-Control"] = "no-store"
    return response
