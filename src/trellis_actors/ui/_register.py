"""Mounting the UI on an app."""

from __future__ import annotations

from quart import Response
from quart_trio import QuartTrio

from ..access.check import Auth, declare
from ..access.tokens import Scope
from ..runtime.runtime import Runtime
from ._blueprint import PREFIX, bp
from ._live import Live
from ._render import go
from ._security import Guard
from ._sessions import SessionPolicy, Sessions
from ._state import UiState, attach
from ._throughput import Throughput
from .routes import actors, bulk, dead, live, nodes, overview, schedules, task, tasks

# The page modules add their routes to ``bp`` when imported.
_PAGES = (actors, bulk, dead, live, nodes, overview, schedules, task, tasks)


async def _home() -> Response:
    return go(f"{PREFIX}/")


def register_ui(
    app: QuartTrio,
    runtime: Runtime,
    *,
    token: str | None = None,
    auth: Auth | None = None,
    sessions: SessionPolicy | None = None,
) -> None:
    """Mount the web UI under ``/ui`` on ``app`` (and send ``/`` there).

    ``runtime`` must be running while the app serves. With tokens (``auth``, or one admin
    ``token``), the UI asks for one once (``/ui/login``) and starts a login session kept
    in the store (``sessions`` says how long it lasts); each page and action needs the
    scope it declares, as the API's routes do. While the app
    serves, a subscriber counts finished tasks for the throughput chart; it is started by
    ``app.before_serving`` in the app's own nursery and stopped by ``app.after_serving``.
    """
    throughput = Throughput()
    auth = auth or Auth(token)
    book = Sessions(runtime, sessions or SessionPolicy())
    streams = Live()
    attach(app.extensions, UiState(runtime, Guard.create(auth), throughput, book, streams))
    app.register_blueprint(bp)
    app.add_url_rule("/", "trellis_ui_home", _home)
    declare(app, "trellis_ui_home", Scope.PUBLIC)  # a redirect to /ui/
    declare(app, "trellis_ui.static", Scope.PUBLIC)

    @app.before_serving
    async def start_throughput() -> None:
        if not runtime.running:
            raise RuntimeError("start the runtime before serving the web UI")
        await app.nursery.start(throughput.run, runtime)

    @app.after_serving
    async def stop_throughput() -> None:
        throughput.stop()
        streams.close()
