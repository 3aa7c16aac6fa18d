"""Serving the API with Hypercorn as a child task of the caller's nursery::

    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        urls = await nursery.start(serve, runtime, ServerConfig(bind="127.0.0.1:0"))

Shutdown is graceful: when ``shutdown_trigger`` returns, the server stops accepting
connections, ends event streams, and gives open requests ``grace_period`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from prometheus_client import CollectorRegistry
from quart import Blueprint

from ..observability.metrics import Metrics
from ..runtime.runtime import Runtime
from ._state import state_of
from ._tracing import traced
from .app import DEFAULT_MAX_BODY, create_app
from .auth import Auth

DEFAULT_BIND = "127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where and how the API listens. ``bind`` is ``HOST:PORT`` (port 0: any free one)."""

    bind: str = DEFAULT_BIND
    token: str | None = None
    metrics_public: bool = False
    max_body: int = DEFAULT_MAX_BODY
    grace_period: float = 5.0

    def __post_init__(self) -> None:
        check_bind(self.bind)
        if self.grace_period < 0:
            raise ValueError("grace_period must be >= 0 seconds")


def check_bind(bind: str) -> None:
    """Raise ValueError unless ``bind`` is ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bind address {bind!r} is not HOST:PORT, e.g. 127.0.0.1:8080")


async def serve(
    runtime: Runtime,
    config: ServerConfig = ServerConfig(),
    *,
    registry: CollectorRegistry | None = None,
    blueprints: Iterable[Blueprint] = (),
    metrics: Metrics | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API of ``runtime`` until ``shutdown_trigger`` returns (or until cancelled).

    Started (``nursery.start``) once listening, with the bound URLs, e.g.
    ``["http://127.0.0.1:41235"]``: the real port when ``bind`` asked for port 0.
    """
    if metrics is None and registry is None:
        metrics = Metrics()
    app = create_app(
        runtime,
        registry=registry,
        auth=Auth(config.token, metrics_public=config.metrics_public),
        max_body=config.max_body,
        blueprints=blueprints,
        metrics=metrics,
    )
    app.asgi_app = traced(app.asgi_app)  # type: ignore[method-assign]  # ASGI middleware
    state = state_of(app.extensions)
    hypercorn = Config()
    hypercorn.bind = [config.bind]
    hypercorn.graceful_timeout = config.grace_period
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")

    async def trigger() -> None:
        if shutdown_trigger is None:
            await trio.sleep_forever()
        else:
            await shutdown_trigger()
        state.close()  # event streams end now rather than at the grace deadline

    async with trio.open_nursery() as nursery:
        if metrics is not None:
            await nursery.start(metrics.run, runtime)
        await hypercorn_serve(app, hypercorn, shutdown_trigger=trigger, task_status=task_status)
        nursery.cancel_scope.cancel()
