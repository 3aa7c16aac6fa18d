"""Mounting the UI on an app."""

from __future__ import annotations

from quart import Response
from quart_trio import QuartTrio

from ..runtime.runtime import Runtime
from ._blueprint import PREFIX, bp
from ._render import go
from ._security import Guard
from ._state import UiState, attach
from ._throughput import Throughput
from .routes import actors, dead, overview, schedules, task, tasks

# The page modules add their routes to ``bp`` when imported.
_PAGES = (actors, dead, overview, schedules, task, tasks)


async def _home() -> Response:
    return go(f"{PREFIX}/")


def register_ui(app: QuartTrio, runtime: Runtime, *, token: str | None = None) -> None:
    """Mount the web UI under ``/ui`` on ``app`` (and send ``/`` there).

    ``runtime`` must be running while the app serves. With ``token``, the UI asks for it
    once (``/ui/login``) and remembers the login in an HttpOnly cookie. While the app
    serves, a subscriber counts finished tasks for the throughput chart; it is started by
    ``app.before_serving`` in the app's own nursery and stopped by ``app.after_serving``.
    """
    throughput = Throughput()
    attach(app.extensions, UiState(runtime, Guard.create(token), throughput))
    app.register_blueprint(bp)
    app.add_url_rule("/", "trellis_ui_home", _home)

    @app.before_serving
    async def start_throughput() -> None:
        if not runtime.running:
            raise RuntimeError("start the runtime before serving the web UI")
        await app.nursery.start(throughput.run, runtime)

    @app.after_serving
    async def stop_throughput() -> None:
        throughput.stop()
