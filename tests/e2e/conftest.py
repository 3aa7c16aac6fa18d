"""Black-box fixtures: ``trellis serve`` processes shared by a session's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.kit import TOKEN, Server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """A server on memory:// shared by the tests that only read or add tasks."""
    running = Server("--store", "memory://", "--workers", "2")
    yield running
    assert running.stop() == 0, "".join(running.stderr)


@pytest.fixture(scope="session")
def secured_server() -> Iterator[Server]:
    """A server with an API token and a 4 KiB body limit."""
    running = Server("--store", "memory://", "--token", TOKEN, "--max-body", "4096")
    yield running
    assert running.stop() == 0, "".join(running.stderr)
