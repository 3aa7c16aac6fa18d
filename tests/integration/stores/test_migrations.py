"""Applying every migration in order ends in exactly the schema of ``schema.sql``."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.integration.stores.kit import LEASE, NOW, S, path

from trellis_actors import _ids
from trellis_actors.errors import ConfigurationError
from trellis_actors.lifecycle import Task
from trellis_actors.stores import Outcome, _sql, open_store, postgres, sqlite
from trellis_actors.stores._sqllogic import TaskLogic

ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9]  # every SQLite migration version, in order
ALL_PG = [*ALL, 10]  # PostgreSQL's: 0010 changes an index SQLite names in its queries


def rows_at_0002() -> dict[str, Task]:
    """Tasks as a database at migration 2 holds them: then a claim made a task running at
    once, so every leased task is running. One runs under a live lease, one under a lease
    that expired (its node died), one waits in the queue."""

    def task(status: S, **fields: Any) -> Task:
        return Task(_ids.new_id(), "echo", "default", {"n": 1}, status, created_at=NOW, **fields)

    running = {"attempt": 1, "queued_at": NOW, "started_at": NOW, "updated_at": NOW}
    return {
        "live": task(S.RUNNING, lease_owner="old", lease_expires_at=NOW + LEASE, **running),
        "dead node": task(S.RUNNING, lease_owner="gone", lease_expires_at=NOW - 1, **running),
        "queued": task(S.QUEUED, queued_at=NOW, updated_at=NOW),
    }


def insert_at_0002(statement: str) -> str:
    """The ``insert_task`` statement as it was before 0008 added ``parent_id``."""
    for added in (", parent_id", ", :parent_id", ",\n    %(parent_id)s::uuid"):
        statement = statement.replace(added, "")
    assert "parent_id" not in statement
    return statement


async def check_upgraded(url: str, tasks: dict[str, Task]) -> None:
    """The upgraded store works on the rows it found: only the queued task is claimed
    (and stays queued), the live lease's outcome applies, the dead node's task retries."""
    store = open_store(url)
    await store.open()
    try:
        (claimed,) = await store.claim(None, 10, "new", NOW + LEASE, NOW)
        assert (claimed.id, claimed.status, claimed.attempt) == (tasks["queued"].id, S.QUEUED, 0)
        live = tasks["live"]
        assert await store.heartbeat([live.id], "old", NOW + 2 * LEASE) == {live.id}
        done = await store.finish([Outcome(live.id, "old", 1, S.COMPLETED, result=1)], NOW)
        assert path(done) == [(S.RUNNING, S.COMPLETED)]
        recovered = await store.recover_expired(NOW)
        assert [move.task.id for move in recovered] == [tasks["dead node"].id]
        assert path(recovered) == [(S.RUNNING, S.RETRYING)]
        counts = (await store.counts()).by_queue
        assert counts == {"default": {"completed": 1, "queued": 1, "retrying": 1}}
    finally:
        await store.close()


def _normalized(statement: str | None) -> str | None:
    if statement is None:
        return None
    without_comments = re.sub(r"--[^\n]*", "", statement)
    # ALTER TABLE ... ADD COLUMN writes "a TEXT, b TEXT)" where schema.sql breaks lines.
    return re.sub(r" ([,)])", r"\1", " ".join(without_comments.split()))


def kept(after: list[Any], before: list[Any]) -> bool:
    """Every row as it was, with the columns added since (0006's node, worker) empty."""
    width = len(before[0])
    return [row[:width] for row in after] == before and all(
        value is None for row in after for value in row[width:]
    )


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

    async def test_a_database_with_leased_tasks_is_brought_up_to_date(self, tmp_path: Path) -> None:
        """A database at migration 2 holding running and queued tasks gets migration 3,
        keeps every row as it was, and the store then works on them."""
        q = _sql.queries("sqlite")
        tasks = rows_at_0002()
        with self._open(tmp_path / "a.db") as old, self._open(tmp_path / "b.db") as fresh:
            old.execute(q["create_migrations"])
            for migration in _sql.migrations("sqlite")[:2]:
                for statement in _sql.sqlite_statements(migration.sql):
                    old.execute(statement)
                params = {"version": migration.version, "name": migration.name}
                old.execute(q["record_migration"], params | {"applied_at": 0})
            for task in tasks.values():
                old.execute(insert_at_0002(q["insert_task"]), TaskLogic.row(task))
            before = old.execute("SELECT * FROM trellis_tasks ORDER BY id").fetchall()
            assert sqlite.migrate(old) == ALL[2:]
            after = old.execute("SELECT * FROM trellis_tasks ORDER BY id").fetchall()
            assert kept(after, before)
            sqlite.migrate(fresh)
            assert sqlite_catalog(old) == sqlite_catalog(fresh)
        await check_upgraded(f"sqlite:///{tmp_path / 'a.db'}", tasks)

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
        assert postgres.migrate_sync(pg_empty_url, from_schema=False) == ALL_PG
        assert postgres_catalog(pg_empty_url) == postgres_catalog(pg_url)
        assert postgres.migrate_sync(pg_url) == []

    def test_an_older_database_is_brought_up_to_date(self, pg_empty_url: str, pg_url: str) -> None:
        """A database at migration 1 gets only what follows."""
        queries = _sql.queries("postgres")
        with psycopg.connect(pg_empty_url) as conn:
            conn.execute(queries["create_migrations"])
            conn.execute(_sql.migrations("postgres")[0].sql)
            conn.execute(queries["record_migration"], {"version": 1, "name": "initial"})
        assert postgres.migrate_sync(pg_empty_url) == ALL_PG[1:]
        assert postgres_catalog(pg_empty_url) == postgres_catalog(pg_url)

    async def test_a_database_with_leased_tasks_is_brought_up_to_date(
        self, pg_empty_url: str, pg_url: str
    ) -> None:
        """A database at migration 2 holding running and queued tasks gets migration 3,
        keeps every row as it was, and the store then works on them."""
        queries = _sql.queries("postgres")
        tasks = rows_at_0002()
        select = "SELECT * FROM trellis_tasks ORDER BY id"
        with psycopg.connect(pg_empty_url) as conn:
            conn.execute(queries["create_migrations"])
            for migration in _sql.migrations("postgres")[:2]:
                conn.execute(migration.sql)
                params = {"version": migration.version, "name": migration.name}
                conn.execute(queries["record_migration"], params)
            for task in tasks.values():
                conn.execute(insert_at_0002(queries["insert_task"]), TaskLogic.row(task))
            before = conn.execute(select).fetchall()
        assert postgres.migrate_sync(pg_empty_url) == ALL_PG[2:]
        assert postgres_catalog(pg_empty_url) == postgres_catalog(pg_url)
        with psycopg.connect(pg_empty_url) as conn:
            assert kept(conn.execute(select).fetchall(), before)
        await check_upgraded(pg_empty_url, tasks)

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
        assert sorted(results) == [[], [], [], ALL_PG]

    async def test_migrate_from_trio(self, pg_empty_url: str) -> None:
        """The async helper for `trellis migrate`."""
        assert await postgres.migrate(pg_empty_url) == ALL_PG
        assert await postgres.migrate(pg_empty_url) == []
