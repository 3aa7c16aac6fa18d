"""Fixtures for the framework apps: a ``trellis serve`` node running
``tests.e2e.frameworks.tasks:app`` on a fresh PostgreSQL database (one per module) or on a
SQLite file. PostgreSQL comes from ``TRELLIS_TEST_PG_URL``; without it the PostgreSQL tests
skip, except in CI (``CI=true``), where they fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.kit import Server
from tests.integration.conftest import (
    create_database,
    database_url,
    drop_database,
    postgres_server,
)

__all__ = ["postgres_server"]  # a fixture, shared with the integration tier

TASKS_APP = "tests.e2e.frameworks.tasks:app"


@pytest.fixture(scope="module")
def shop_database(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty database for one module's node and app."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def pg_node(shop_database: str) -> Iterator[Server]:
    """A node on ``shop_database`` (it migrates the schema as it starts)."""
    running = Server("--app", TASKS_APP, "--store", shop_database)
    yield running
    assert running.stop() == 0, "".join(running.stderr)


def sqlalchemy_url(url: str) -> str:
    """A ``postgresql://`` URL for SQLAlchemy with the psycopg 3 driver."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
