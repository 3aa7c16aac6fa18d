"""Reads at scale: the store's listing, counting and claiming with a million stored tasks.

For SQLite and PostgreSQL, fills a fresh database with ``--tasks`` tasks (1,000,000 by
default; written by one SQL statement, not through the runtime: this measures reads, not
writes) spread over five types and three queues, 98% completed, 1% dead and 1% queued,
then times each read the API and the UI make, through the store itself: the best and the
worst of five calls, beside the store's own ``ping`` (one round trip, the raw floor).
PostgreSQL is analyzed after the fill, as autovacuum would do soon after such a load.

    python bench/scale.py [--tasks 1000000] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import trio
from stores import add_pg_argument, pg_reachable, postgres_databases, sqlite_files

from trellis_actors.lifecycle import TaskStatus
from trellis_actors.stores import Store, TaskFilter, open_store

REPEATS = 5
T0 = 1_800_000_000.0

# Task i: id ordered by i, type i % 5, queue i % 3; every 100th is queued, the next dead.
_FILL_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :n)
INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at,
    dead_letter, created_at, queued_at, started_at, finished_at, updated_at
)
SELECT
    printf('00000000-0000-7000-8000-%012x', i), 'type' || (i % 5), 'q' || (i % 3),
    '{"n": ' || i || '}',
    CASE i % 100 WHEN 98 THEN 'dead' WHEN 99 THEN 'queued' ELSE 'completed' END,
    0, 1, 3, :t0 + i * 0.001, 1, :t0 + i * 0.001, :t0 + i * 0.001,
    CASE i % 100 WHEN 99 THEN NULL ELSE :t0 + i * 0.001 END,
    CASE i % 100 WHEN 99 THEN NULL ELSE :t0 + i * 0.001 END,
    :t0 + i * 0.001
FROM n
"""
_FILL_POSTGRES = """
INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at,
    dead_letter, created_at, queued_at, started_at, finished_at, updated_at
)
SELECT
    ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'type' || (i %% 5),
    'q' || (i %% 3), jsonb_build_object('n', i),
    CASE i %% 100 WHEN 98 THEN 'dead' WHEN 99 THEN 'queued' ELSE 'completed' END,
    0, 1, 3, %(t0)s + i * 0.001, true, %(t0)s + i * 0.001, %(t0)s + i * 0.001,
    CASE i %% 100 WHEN 99 THEN NULL ELSE %(t0)s + i * 0.001 END,
    CASE i %% 100 WHEN 99 THEN NULL ELSE %(t0)s + i * 0.001 END,
    %(t0)s + i * 0.001
FROM generate_series(0, %(n)s - 1) AS i
"""


def task_id(i: int) -> str:
    return f"00000000-0000-7000-8000-{i:012x}"


def fill(url: str, tasks: int) -> float:
    """Seconds to write ``tasks`` rows (the schema is there already)."""
    started = time.perf_counter()
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(_FILL_SQLITE, {"n": tasks, "t0": T0})
    else:
        with psycopg.connect(url) as conn:
            conn.execute(_FILL_POSTGRES, {"n": tasks, "t0": T0})
            conn.commit()
            conn.autocommit = True
            conn.execute("ANALYZE trellis_tasks")
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Best and worst of REPEATS calls, in milliseconds."""
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return 1e3 * min(seconds), 1e3 * max(seconds)


def reads(store: Store, tasks: int) -> dict[str, Callable[[], Awaitable[Any]]]:
    middle = task_id(tasks // 2)
    page = 50
    claimed = iter(range(10**9))

    def listing(**fields: Any) -> Callable[[], Awaitable[Any]]:
        cursor = fields.pop("cursor", None)
        return lambda: store.list_tasks(TaskFilter(**fields), page, cursor)

    async def claim() -> None:  # a different 32 each time; the lease is ours for good
        await store.claim(None, 32, f"bench-{next(claimed)}", T0 + 1e6, T0 + 1e3)

    return {
        "ping (one round trip)": store.ping,
        "get one task": lambda: store.get(middle),
        "events of one task": lambda: store.events(middle),
        "list, newest 50": listing(),
        "list, 50 from the middle (cursor)": listing(cursor=middle),
        "list, status=queued": listing(status=TaskStatus.QUEUED),
        "list, status=completed": listing(status=TaskStatus.COMPLETED),
        "list, type=type3": listing(type="type3"),
        "list, queue=q1": listing(queue="q1"),
        "list, status=dead & type=type2": listing(status=TaskStatus.DEAD, type="type2"),
        "counts by queue and status": store.counts,
        "claim 32 of the queued": claim,
    }


async def measure(name: str, url: str, tasks: int) -> None:
    store = open_store(url)
    await store.open()  # the schema
    try:
        seconds = await trio.to_thread.run_sync(fill, url, tasks)
        stored = (await store.counts()).by_queue
        total = sum(sum(statuses.values()) for statuses in stored.values())
        assert total == tasks, f"{total} tasks stored, not {tasks}"
        print(f"{name}: {tasks:,} tasks written in {seconds:.1f} s")
        for label, call in reads(store, tasks).items():
            best, worst = await timed(call)
            print(f"{name}:   {label:<36} {best:8.2f} ms  (worst {worst:.2f} ms)")
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with sqlite_files() as fresh:
        async with fresh() as url:
            await measure("sqlite", url, args.tasks)
    if pg_reachable(args.pg):
        with postgres_databases(args.pg) as fresh:
            async with fresh() as url:
                await measure("postgres", url, args.tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    add_pg_argument(parser)
    trio.run(main, parser.parse_args())
