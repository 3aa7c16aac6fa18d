"""A real runtime on ``memory://`` and the API app over it, driven by Quart's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from tests.unit.http.kit import TOKEN, Probe, make_app

from trellis_actors import Runtime, open_runtime
from trellis_actors.http import Auth, create_app


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("trellis_test_things", "A metric registered by a test", registry=registry).inc()
    return registry


@pytest.fixture
async def runtime(probe: Probe) -> AsyncIterator[Runtime]:
    async with open_runtime(make_app(probe), store="memory://", workers=2) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime, registry: CollectorRegistry) -> AsyncIterator[Any]:
    app = create_app(runtime, registry=registry, max_body=64 * 1024)
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture
async def secured(runtime: Runtime) -> AsyncIterator[Any]:
    """A client of an app with an API token (``/metrics`` still needs it)."""
    app = create_app(runtime, auth=Auth(TOKEN))
    async with app.test_app() as test_app:
        yield test_app.test_client()
