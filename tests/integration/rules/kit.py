"""What the input-rule tests share: a served runtime, and the supervision tree's restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from trellis_actors import App, Runtime, open_runtime
from trellis_actors.http.server import ServerConfig, serve
from trellis_actors.stores import Store


@dataclass(frozen=True)
class Served:
    runtime: Runtime
    client: httpx.AsyncClient


@asynccontextmanager
async def serving(store: str | Store, **config: Any) -> AsyncIterator[Served]:
    """A runtime on ``store`` and its API on Hypercorn at 127.0.0.1:<free port>."""
    async with (
        open_runtime(App(), store=store, workers=1, **config) as rt,
        trio.open_nursery() as nursery,
    ):
        (url,) = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Served(rt, client)
        nursery.cancel_scope.cancel()


def restarts(rt: Runtime) -> dict[str, int]:
    """Restarts of every actor that has restarted (none, when no input reached a store)."""
    return {actor.name: actor.restarts for actor in rt.snapshot().walk() if actor.restarts}
