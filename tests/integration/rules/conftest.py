"""Fixtures of the input-rule tests: every store kind, and a real API server over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
from tests.integration.rules.kit import Served
from tests.integration.stores.conftest import store as store
from tests.integration.stores.conftest import store_url as store_url

from trellis_actors import App, open_runtime
from trellis_actors.http.server import ServerConfig, serve


@pytest.fixture
async def served(store_url: str) -> AsyncIterator[Served]:
    """A runtime on ``store_url`` and its API on Hypercorn at 127.0.0.1:<free port>."""
    async with (
        open_runtime(App(), store=store_url, workers=1) as rt,
        trio.open_nursery() as nursery,
    ):
        (url,) = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Served(rt, client)
        nursery.cancel_scope.cancel()
