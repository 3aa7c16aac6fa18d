"""A store outage is an outage, not an exit.

While its store is down a node refuses what needs the store (``503`` with ``Retry-After``
over HTTP), reports itself not ready, keeps the outcomes its workers reach and probes the
store; once the store is back it writes them and takes work again, by itself. No actor is
restarted and nothing acknowledged is lost.

The outages are real. SQLite: the disk fills up (``PRAGMA max_page_count`` on the store's
connection, so that a write needing a new page fails with SQLITE_FULL, "database or disk is
full"). PostgreSQL: the database stops taking connections and the runtime's sessions are
terminated, as a restart or a failover does.

These run in real time: the store works in threads and on a server, which virtual time
cannot wait on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trio
from psycopg import sql
from tests.integration.conftest import PG_URL

from trellis_actors import App, Runtime, TaskContext, TaskStatus, open_runtime
from trellis_actors.http import ServerConfig, serve
from trellis_actors.stores import SqliteStore

#: A result too big for a page (4 KiB): writing it needs new pages, which a full disk refuses.
BLOB = "x" * 20_000


class Gate:
    """Holds the ``gated`` tasks until opened (one per test: trio events are per run)."""

    opened: trio.Event


GATE = Gate()
app = App(builtins=False)


@app.task(name="gated")
async def gated(ctx: TaskContext, payload: Any) -> dict[str, str]:
    await GATE.opened.wait()
    return {"blob": BLOB}


@app.task(name="quick")
async def quick(ctx: TaskContext, payload: Any) -> Any:
    return payload


@asynccontextmanager
async def node(store: Any) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A runtime on ``store`` served by Hypercorn on 127.0.0.1:0, and a client of it."""
    GATE.opened = trio.Event()
    # Leases far longer than the test: an outcome that only came back through a lease's
    # expiry would hang it rather than pass.
    async with (
        open_runtime(app, store=store, workers=4, lease=120, poll_interval=0.1) as rt,
        trio.open_nursery() as nursery,
    ):
        urls = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            yield rt, client
        nursery.cancel_scope.cancel()


async def running(rt: Runtime, client: httpx.AsyncClient, count: int) -> list[str]:
    """Submit ``count`` gated tasks over HTTP; their ids once every one runs."""
    async with rt.subscribe() as events:
        ids = set()
        for _ in range(count):
            answer = await client.post("/tasks", json={"type": "gated"})
            assert answer.status_code == 201, answer.text
            ids.add(answer.json()["id"])
        started: set[str] = set()
        with trio.fail_after(30):
            async for move in events:
                if move.task.status is TaskStatus.RUNNING:
                    started.add(move.task.id)
                if started >= ids:
                    return sorted(ids)
    raise AssertionError("the event stream ended")


async def answers(client: httpx.AsyncClient, path: str, status: int) -> httpx.Response:
    """GET ``path`` until it answers ``status`` (the node noticing the store's state)."""
    with trio.fail_after(30):
        # A readiness check is polled, as a load balancer does.
        while (answer := await client.get(path)).status_code != status:  # noqa: ASYNC110
            await trio.sleep(0.05)
    return answer


async def ride_out_outage(
    rt: Runtime,
    client: httpx.AsyncClient,
    store_down: Callable[[], Awaitable[None]],
    store_up: Callable[[], Awaitable[None]],
    *,
    lasting: float,
) -> None:
    """The scenario, whatever the store: tasks run, the store goes down, they finish;
    the node refuses work and is not ready; the store comes back; nothing was lost."""
    gated_ids = await running(rt, client, 3)
    await store_down()
    GATE.opened.set()  # they finish while the store is down: their outcomes wait

    ready = (await answers(client, "/readyz", 503)).json()
    assert ready["store"] is False and ready["supervisor"] == "running"
    refused = 0
    outage_ends = trio.current_time() + lasting  # a few probes fail meanwhile
    while trio.current_time() < outage_ends:
        answer = await client.post("/tasks", json={"type": "quick", "payload": refused})
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) >= 1
        error = answer.json()["error"]
        assert error["code"] == "store_unavailable"
        assert "the store is unavailable" in error["message"] and "retry" in error["message"]
        refused += 1
        await trio.sleep(0.1)  # pacing the requests over the outage
    tree = rt.snapshot()
    assert tree.state == "running"
    assert [(actor.name, actor.restarts) for actor in tree.children if actor.restarts] == []

    await store_up()
    await answers(client, "/readyz", 200)
    with trio.fail_after(60):
        for task_id in gated_ids:  # outcomes reached during the outage were kept
            done = await rt.wait(task_id)
            assert done.status is TaskStatus.COMPLETED and done.result == {"blob": BLOB}
    answer = await client.post("/tasks", json={"type": "quick", "payload": "after"})
    assert answer.status_code == 201, answer.text
    with trio.fail_after(30):
        done = await rt.wait(answer.json()["id"])
    assert done.status is TaskStatus.COMPLETED and done.result == "after"
    counts = await rt.counts()
    assert counts.total(TaskStatus.COMPLETED) == 4  # a refused submission stored nothing
    assert sum(counts.total(status) for status in TaskStatus) == 4
    tree = rt.snapshot()
    assert [(actor.name, actor.restarts) for actor in tree.children if actor.restarts] == []


# -- SQLite: a full disk ----------------------------------------------------------------
_UNLIMITED = 1073741823  # SQLite's default max_page_count


def set_max_pages(store: SqliteStore, full: bool) -> None:
    """Fill the disk (no page beyond those the database has), or free it again. The
    limit belongs to a connection: it is set on the store's own, in its thread."""
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0, "no free page to reuse"
    conn.execute(f"PRAGMA max_page_count = {pages if full else _UNLIMITED}")


async def test_sqlite_disk_full_is_ridden_out(tmp_path: Path) -> None:
    """SQLITE_FULL: 503 + Retry-After, /readyz 503, no restart; then everything resumes."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")

    async def full(on: bool) -> None:
        await trio.to_thread.run_sync(set_max_pages, store, on, limiter=store._limiter)

    async with node(store) as (rt, client):
        await ride_out_outage(rt, client, lambda: full(True), lambda: full(False), lasting=1.5)


def test_the_disk_is_really_full(tmp_path: Path) -> None:
    """The outage above is SQLite's own: a write needing a page fails with SQLITE_FULL."""
    conn = sqlite3.connect(tmp_path / "full.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (blob TEXT)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full") as caught:
        conn.execute("INSERT INTO t VALUES (?)", (BLOB,))
    assert caught.value.sqlite_errorname == "SQLITE_FULL"
    conn.close()


# -- PostgreSQL: the database goes away -------------------------------------------------
def allow_connections(database: str, allow: bool) -> None:
    """Let the database take connections or not; when not, end the sessions it has."""
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), sql.Literal(allow)
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )


@pytest.mark.postgres
async def test_postgres_going_away_is_ridden_out(pg_url: str) -> None:
    """Sessions killed, connections refused: 503s, not ready, no restart; then it resumes."""
    database = pg_url.rsplit("/", 1)[1]

    async def allow(on: bool) -> None:
        await trio.to_thread.run_sync(allow_connections, database, on)

    try:
        async with node(pg_url) as (rt, client):
            await ride_out_outage(rt, client, lambda: allow(False), lambda: allow(True), lasting=2)
    finally:
        allow_connections(database, True)
