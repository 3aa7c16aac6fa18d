"""``/ui/live``: the event stream that tells the tasks and task pages to refresh, and
``/ui/openapi.json``: the API document for a login session (read by ``/docs``)."""

from __future__ import annotations

from quart import Response, current_app, request

from ...access.check import needs
from .._blueprint import bp
from .._render import render
from .._state import ui


@bp.get("/live")
@needs("read")
async def live() -> Response:
    state = ui()
    if state.live.closing.is_set():
        return Response("", 503)
    task_id = request.args.get("task_id") or None
    response = Response(
        state.live.changes(state.runtime, task_id),
        200,
        {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        content_type="text/event-stream",
    )
    response.timeout = None  # a stream has no end to wait for
    return response


@bp.get("/openapi.json")
@needs("read")
async def openapi() -> Response:
    """The API document for a browser logged in to the UI: ``/docs`` reads it here, so the
    page works on a server with tokens without ever holding one."""
    schema = current_app.extensions.get("QUART_SCHEMA")
    if schema is None:  # the UI mounted on an app without the API
        return await render("error.html", 404, title="Not found", message="No API here.")
    document = current_app.json.dumps(schema.openapi_provider.schema())
    return Response(document, 200, content_type="application/json")
