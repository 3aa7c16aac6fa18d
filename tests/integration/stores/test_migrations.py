"""Applying every migration in order ends in exactly the schema of ``schema.sql``."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from trellis_actors.errors import ConfigurationError
from trellis_actors.stores import _sql, postgres, sqlite

ALL = [1, 2, 3]  # every migration version, in order


def _normalized(statement: str | None) -> str | None:
    if statement is None:
        return None
    without_comments = re.sub(r"--[^\n]*", "", statement)
    return " ".join(without_comments.split())


def sqlite_catalog(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything SQLite knows about the schema: objects, columns and index columns."""
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()
    catalog: dict[str, Any] = {
        "objects": [(kind, name, table, _normalized(sql)) for kind, name, table, sql in objects]
    }
    for kind, name, _, _ in objects:
        pragma = "table_xinfo" if kind == "table" else "index_xinfo"
        catalog[name] = conn.execute(f"SELECT * FROM pragma_{pragma}(?)", (name,)).fetchall()
    return catalog


def postgres_catalog(url: str) -> dict[str, Any]:
    """Columns, indexes and constraints of the public schema."""
    with psycopg.connect(url) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable,"
                " column_default, is_identity, identity_generation"
                " FROM information_schema.columns WHERE table_schema = 'public'"
                " ORDER BY table_name, ordinal_position"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' ORDER BY indexname"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                " ORDER BY 1, 2"
            ).fetchall(),
            "versions": conn.execute("SELECT version, name FROM trellis_migrations").fetchall(),
        }


class TestQueryFiles:
    def test_named_blocks(self) -> None:
        """Blocks split on their name line; comments and the semicolon are dropped."""
        text = "preamble\n-- name: one\n-- about one, 100%\nSELECT 1;\n\n-- name: two\nSELECT 2\n"
        assert _sql.parse_queries(text) == {"one": "SELECT 1", "two": "SELECT 2"}

    def test_a_name_used_twice_is_refused(self) -> None:
        """Two blocks may not share a name."""
        with pytest.raises(ValueError, match="query 'one' is defined twice"):
            _sql.parse_queries("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")

    @pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
    def test_migrations_are_numbered_from_one(self, dialect: str) -> None:
        """Versions run 1, 2, 3… and the first is the initial schema."""
        found = _sql.migrations(dialect)
        assert [m.version for m in found] == list(range(1, len(found) + 1))
        assert found[0].name == "initial"


class TestSqliteMigrations:
    def _open(self, path: Path) -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None)

    def test_migrations_equal_the_schema(self, tmp_path: Path) -> None:
        """Migrations one by one and schema.sql at once produce the same catalog."""
        with self._open(tmp_path / "a.db") as by_schema, self._open(tmp_path / "b.db") as stepwise:
            assert sqlite.migrate(by_schema) == ALL
            assert sqlite.migrate(stepwise, from_schema=False) == ALL
            assert sqlite_catalog(by_schema) == sqlite_catalog(stepwise)
            assert sqlite.migrate(by_schema) == []  # nothing left to do

    def test_an_older_database_is_brought_up_to_date(self, tmp_path: Path) -> None:
        """A database at migration 1 gets only the migrations after it."""
        with self._open(tmp_path / "a.db") as old, self._open(tmp_path / "b.db") as fresh:
            old.execute(_sql.queries("sqlite")["create_migrations"])
            for statement in _sql.sqlite_statements(_sql.migrations("sqlite")[0].sql):
                old.execute(statement)
            old.execute("INSERT INTO trellis_migrations VALUES (1, 'initial', 0)")
            assert sqlite.migrate(old) == ALL[1:]
            sqlite.migrate(fresh)
            assert sqlite_catalog(old) == sqlite_catalog(fresh)

    def test_a_newer_database_is_refused(self, tmp_path: Path) -> None:
        """A database migrated by a newer Trellis is not touched."""
        with self._open(tmp_path / "a.db") as conn:
            sqlite.migrate(conn)
            conn.execute("INSERT INTO trellis_migrations VALUES (999, 'future', 0)")
            with pytest.raises(ConfigurationError, match="at migration 999, newer than"):
                sqlite.migrate(conn)


@pytest.mark.postgres
class TestPostgresMigrations:
    def test_migrations_equal_the_schema(self, pg_empty_url: str, pg_url: str) -> None:
        """Migrations one by one produce the catalog of schema.sql (the template)."""
        assert postgres.migrate_sync(pg_empty_url, from_schema=False) == ALL
        assert postgres_catalog(pg_empty_url) == postgres_catalog(pg_url)
        assert postgres.migrate_sync(pg_url) == []

    def test_an_older_database_is_brought_up_to_date(self, pg_empty_url: str, pg_url: str) -> None:
        """A database at migration 1 gets only what follows."""
        queries = _sql.queries("postgres")
        with psycopg.connect(pg_empty_url) as conn:
            conn.execute(queries["create_migrations"])
            conn.execute(_sql.migrations("postgres")[0].sql)
            conn.execute(queries["record_migration"], {"version": 1, "name": "initial"})
        assert postgres.migrate_sync(pg_empty_url) == ALL[1:]
        assert postgres_catalog(pg_empty_url) == postgres_catalog(pg_url)

    def test_nodes_starting_together_migrate_once(self, pg_empty_url: str) -> None:
        """Under the advisory lock one node migrates and the others find nothing to do."""
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def start() -> None:
            try:
                results.append(postgres.migrate_sync(pg_empty_url))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(results) == [[], [], [], ALL]

    async def test_migrate_from_trio(self, pg_empty_url: str) -> None:
        """The async helper for `trellis migrate`."""
        assert await postgres.migrate(pg_empty_url) == ALL
        assert await postgres.migrate(pg_empty_url) == []
