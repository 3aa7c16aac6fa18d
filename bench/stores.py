"""Throughput and latency of the runtime on the durable stores: SQLite and PostgreSQL.

Prints, in one run and for each store:

1. the raw limit: single-row INSERT + COMMIT per second with the bare driver (sqlite3 on
   the same file in WAL mode with the store's ``synchronous`` level, psycopg on the same
   database), on a table shaped like the tasks table;
2. end to end: 20,000 no-op tasks submitted in batches of 1,000 with ``submit_many`` and
   run to completion by one runtime (tasks/s, counted from ``rt.subscribe()``; the best of
   ``--rounds`` runs, each on a fresh database);
3. submit-to-start latency p50/p99 on an idle runtime, one task at a time (the handler
   stamps ``time.perf_counter()``).

SQLite uses a temporary file. PostgreSQL gets a fresh database ``trellis_bench_<random>`` on
the server at ``--pg`` (dropped afterwards), and is skipped with a message if unreachable.

    python bench/stores.py [--tasks 20000] [--workers 8] [--rounds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import structlog
import trio
from _raw import noop_throughput, percentile
from psycopg import sql

import trellis_actors as ta

Fresh = Callable[[], AbstractAsyncContextManager[str]]  # a fresh, empty database's URL
TARGETS = {"sqlite": 5_000, "postgres": 3_000}  # tasks/s end to end
LATENCY_TARGET = 5.0  # ms, p50
RAW_SECONDS = 2.0

_RAW_TABLE = """
CREATE TABLE bench_raw (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, queue TEXT NOT NULL, payload TEXT,
    status TEXT NOT NULL, priority INTEGER NOT NULL, created_at REAL NOT NULL
)
"""
_RAW_INSERT = "INSERT INTO bench_raw VALUES (%s, %s, %s, %s, %s, %s, %s)"


class Stamps:
    """When each ``stamp`` task started; ``started`` is set by the latest one."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.started = trio.Event()


def make_app() -> tuple[ta.App, Stamps]:
    app = ta.App()
    stamps = Stamps()

    @app.task
    async def noop(ctx: ta.TaskContext, payload: object) -> None:
        return None

    @app.task
    async def stamp(ctx: ta.TaskContext, payload: object) -> None:
        stamps.at[ctx.task_id] = time.perf_counter()
        stamps.started.set()

    return app, stamps


# -- raw limits ---------------------------------------------------------------------------
def raw_sqlite(path: Path) -> float:
    """Single-row insert+commit per second with sqlite3 on ``path`` (WAL, like the store)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # the store's default
        conn.execute(_RAW_TABLE)
        insert = _RAW_INSERT.replace("%s", "?")
        count, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < RAW_SECONDS:
            for _ in range(100):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(insert, _raw_row())
                conn.execute("COMMIT")
            count += 100
        conn.execute("DROP TABLE bench_raw")
        return count / elapsed
    finally:
        conn.close()


def raw_postgres(url: str) -> float:
    """Single-row insert+commit per second with psycopg on the database at ``url``."""
    with psycopg.connect(url) as conn:
        conn.execute(_RAW_TABLE)
        conn.commit()
        count, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < RAW_SECONDS:
            for _ in range(100):
                conn.execute(_RAW_INSERT, _raw_row())
                conn.commit()
            count += 100
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
        return count / elapsed


def _raw_row() -> tuple[object, ...]:
    return (str(uuid.uuid4()), "noop", "default", "null", "queued", 0, time.time())


# -- the runtime --------------------------------------------------------------------------
async def throughput(app: ta.App, url: str, tasks: int, workers: int) -> float:
    return await noop_throughput(app, store=url, tasks=tasks, workers=workers)


async def latency(app: ta.App, stamps: Stamps, url: str, samples: int, workers: int) -> list[float]:
    delays = []
    async with ta.open_runtime(app, store=url, workers=workers) as rt:
        for _ in range(samples):
            stamps.started = trio.Event()
            submitted = time.perf_counter()
            task = await rt.submit("stamp")
            with trio.fail_after(10):
                await stamps.started.wait()  # not rt.wait: its own query would come first
            delays.append(stamps.at.pop(task.id) - submitted)
            await rt.wait(task.id, timeout=10)  # idle again before the next one
    return delays


async def measure(
    name: str,
    raw: float,
    fresh_url: Fresh,
    args: argparse.Namespace,
) -> bool:
    app, stamps = make_app()
    print(f"{name}: raw single-row insert+commit:  {raw:>9,.0f} rows/s")
    rates = []
    for _ in range(args.rounds):
        async with fresh_url() as url:
            rates.append(await throughput(app, url, args.tasks, args.workers))
    rate = max(rates)
    target = TARGETS[name]
    ok = rate >= target
    print(
        f"{name}: end to end, {args.tasks:,} no-op tasks: {rate:>9,.0f} tasks/s "
        f"({rate / raw:.1f}x the raw single-row commit rate; runs: "
        f"{', '.join(f'{r:,.0f}' for r in rates)})  target >= {target:,}: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    async with fresh_url() as url:
        delays = await latency(app, stamps, url, args.samples, args.workers)
    p50, p99 = percentile(delays, 0.50) * 1e3, percentile(delays, 0.99) * 1e3
    ok_latency = p50 < LATENCY_TARGET
    print(
        f"{name}: submit-to-start latency:      p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"target p50 < {LATENCY_TARGET:g} ms: {'PASS' if ok_latency else 'FAIL'}"
    )
    return ok and ok_latency


# -- databases ----------------------------------------------------------------------------
@contextmanager
def sqlite_files() -> Iterator[Fresh]:
    with tempfile.TemporaryDirectory(prefix="trellis-bench-") as folder:
        counter = iter(range(1_000_000))

        @asynccontextmanager
        async def fresh() -> AsyncIterator[str]:
            yield f"sqlite:///{Path(folder) / f'tasks-{next(counter)}.db'}"

        yield fresh


def _with_database(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


@contextmanager
def postgres_databases(server: str) -> Iterator[Fresh]:
    """Fresh ``trellis_bench_<random>`` databases on ``server``, each dropped after use."""

    def admin(statement: sql.Composable) -> None:
        with psycopg.connect(server, autocommit=True, connect_timeout=3) as conn:
            conn.execute(statement)

    @asynccontextmanager
    async def fresh() -> AsyncIterator[str]:
        name = f"trellis_bench_{uuid.uuid4().hex[:12]}"
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield _with_database(server, name)
        finally:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    yield fresh


def add_pg_argument(parser: argparse.ArgumentParser) -> None:
    """``--pg``: the PostgreSQL server the benchmarks make their databases on."""
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TRELLIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server URL (any database; a fresh one is created beside it)",
    )


def pg_reachable(server: str) -> bool:
    """True when ``server`` answers; otherwise says that PostgreSQL is skipped."""
    try:
        with psycopg.connect(server, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        print(f"postgres: skipped, the server at {server} is unreachable ({exc})".strip())
        return False
    return True


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}  (2 cores)")
    results = []
    with sqlite_files() as fresh:
        async with fresh() as url:
            raw = raw_sqlite(Path(url.removeprefix("sqlite:///")))
        results.append(await measure("sqlite", raw, fresh, args))
    if pg_reachable(args.pg):
        with postgres_databases(args.pg) as fresh:
            async with fresh() as url:
                raw = raw_postgres(url)
            results.append(await measure("postgres", raw, fresh, args))
    print("all targets met" if all(results) else "some targets missed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=500)
    add_pg_argument(parser)
    trio.run(main, parser.parse_args())
