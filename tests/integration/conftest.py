"""Integration fixtures: real PostgreSQL databases, and ``store_url`` for every store kind.

A template database with the schema applied is made once per session; each test gets a
fresh database cloned from it (``CREATE DATABASE … TEMPLATE …``), dropped afterwards. The
server comes from ``TRELLIS_TEST_PG_URL``. Without a reachable server the PostgreSQL tests
skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from trellis_actors.stores.postgres import migrate_sync

PG_URL = os.environ.get("TRELLIS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """``TRELLIS_TEST_PG_URL`` pointed at the database ``name``."""
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


def create_database(template: str | None = None) -> str:
    name = f"trellis_test_{uuid.uuid4().hex[:16]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin() as conn:
        conn.execute(statement)
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server URL, once it answers; skips (fails in CI) when it does not."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is unreachable at TRELLIS_TEST_PG_URL ({exc})".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@pytest.fixture(scope="session")
def pg_template(postgres_server: str) -> Iterator[str]:
    """A database holding the latest schema, the template of every test database."""
    name = create_database()
    try:
        migrate_sync(database_url(name))
        yield name
    finally:
        drop_database(name)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``memory://``, a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh database with the schema applied, dropped after the test."""
    name = create_database(template=pg_template)
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def pg_empty_url(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh database without any schema, dropped after the test."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)
