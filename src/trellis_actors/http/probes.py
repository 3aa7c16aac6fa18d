"""The probes of a node without the API (``trellis worker --bind``): ``/health``,
``/readyz`` and ``/metrics``, the same views the API serves, and nothing else.

They need no token: a probe answers whether the node lives and is ready, and its
metrics, and changes nothing. Bind them where only the orchestrator and the metrics
scraper reach (see docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart import Blueprint
from quart_trio import QuartTrio

from ..observability.metrics import Metrics
from ..runtime.runtime import Runtime
from . import errors
from ._state import ApiState, attach
from .auth import Auth
from .routes import system
from .server import check_bind

#: The paths a probe server answers; anything else is a 404.
PROBES = ("/health", "/readyz", "/metrics")


def create_probe_app(runtime: Runtime, metrics: Metrics) -> QuartTrio:
    """A Quart-Trio app serving only :data:`PROBES` of ``runtime``, without a token."""
    app = QuartTrio("trellis_actors.probes", static_folder=None)
    app.config.update(PROVIDE_AUTOMATIC_OPTIONS=False, MAX_CONTENT_LENGTH=1024)
    attach(app.extensions, ApiState(runtime, metrics.registry, Auth(), metrics))
    errors.install(app)
    probes = Blueprint("probes", __name__)
    for path, view in zip(PROBES, (system.health, system.readyz, system.metrics), strict=True):
        probes.add_url_rule(path, view_func=view, methods=["GET"])
    app.register_blueprint(probes)
    return app


async def serve_probes(
    runtime: Runtime,
    bind: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the probes of ``runtime`` on ``bind`` (``HOST:PORT``) until
    ``shutdown_trigger`` returns; started (``nursery.start``) with the bound URLs."""
    check_bind(bind)
    metrics = Metrics()
    app = create_probe_app(runtime, metrics)
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")

    async def trigger() -> None:
        if shutdown_trigger is None:
            await trio.sleep_forever()
        else:
            await shutdown_trigger()

    async with trio.open_nursery() as nursery:
        await nursery.start(metrics.run, runtime)
        await hypercorn_serve(app, config, shutdown_trigger=trigger, task_status=task_status)
        nursery.cancel_scope.cancel()
