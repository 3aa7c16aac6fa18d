"""Fixtures of the input-rule tests: every store kind, and a real API server over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.rules.kit import Served, serving
from tests.integration.stores.conftest import store as store


@pytest.fixture
async def served(store_url: str) -> AsyncIterator[Served]:
    """A runtime on ``store_url`` and its API on a real server (see :func:`serving`)."""
    async with serving(store_url) as running:
        yield running
