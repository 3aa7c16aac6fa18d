"""The ``store`` fixture: one opened store per test, for every store kind (``store_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from trellis_actors.stores import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
