"""Producers that skip the node: ``trellis_actors.sqlite.enqueue`` and
``trellis_actors.postgres.enqueue``, one task per call, beside the bare driver's
single-row INSERT + COMMIT of a similar row on the same kind of connection.

    python bench/_direct.py [--seconds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable

import psycopg

from trellis_actors import postgres, sqlite
from trellis_actors.lifecycle import NewTask
from trellis_actors.stores import _sql
from trellis_actors.stores._sqllogic import TaskLogic
from trellis_actors.stores.base import arrive
from trellis_actors.stores.postgres import migrate_sync
from trellis_actors.stores.sqlite import _EVENT_COLUMNS, _expand, connect


def by_hand() -> tuple[dict[str, object], list[dict[str, object]]]:
    """A new task's row and events, built without any checking: the floor of the cost."""
    now = time.time()
    steps = arrive(NewTask("noop", {"n": 1}), now)
    return TaskLogic.row(steps[-1].task), [TaskLogic.event_row(move.event) for move in steps]


def rate(seconds: float, step: Callable[[], object]) -> float:
    """Calls per second of ``step``, over ``seconds`` after a short warm-up."""
    for _ in range(200):
        step()
    done, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        for _ in range(50):
            step()
        done += 50
    return done / elapsed


def best(rounds: int, seconds: float, **steps: Callable[[], object]) -> dict[str, float]:
    """The best rate of each of ``steps`` over ``rounds`` rounds, taken in turn (this
    machine is shared: turns spread its noise over all of them)."""
    found = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            found[name] = max(found[name], rate(seconds, step))
    return found


_ROW = (
    "INSERT INTO bare (id, type, queue, payload, status, priority, run_at, created_at)"
    " VALUES (?, 'noop', 'default', ?, 'queued', 0, ?, ?)"
)


def bench_sqlite(seconds: float) -> None:
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "tasks.db")
    bare = connect(os.path.join(folder, "bare.db"))  # the store's own settings
    bare.execute(
        "CREATE TABLE bare (id TEXT PRIMARY KEY, type TEXT, queue TEXT, payload TEXT,"
        " status TEXT, priority INTEGER, run_at REAL, created_at REAL)"
    )

    def insert() -> None:
        now = time.time()
        bare.execute("BEGIN IMMEDIATE")
        bare.execute(_ROW, (str(uuid.uuid4()), json.dumps({"n": 1}), now, now))
        bare.execute("COMMIT")

    q = _sql.queries("sqlite")
    floor_conn = connect(os.path.join(folder, "floor.db"))
    two_events = _expand(q["insert_events"], (False,) * len(_EVENT_COLUMNS), 2)  # all bound

    def floor() -> None:
        row, events = by_hand()
        floor_conn.execute("BEGIN IMMEDIATE")
        floor_conn.execute(q["insert_task"], row)
        floor_conn.execute(two_events, [e[name] for e in events for name in _EVENT_COLUMNS])
        floor_conn.execute("COMMIT")

    found = best(
        5,
        seconds / 5,
        raw=insert,
        floor=floor,
        ours=lambda: sqlite.enqueue(path, "noop", {"n": 1}),
    )
    raw, ours, low = found["raw"], found["ours"], found["floor"]
    print(
        f"sqlite:   bare INSERT+COMMIT {raw:>9,.0f}/s   the store's statements by hand "
        f"{low:>9,.0f}/s   sqlite.enqueue {ours:>9,.0f} tasks/s ({100 * ours / raw:.0f}% of "
        f"bare, {100 * ours / low:.0f}% of by hand)  target >= 10,000: "
        f"{'PASS' if ours >= 10_000 else 'FAIL'}"
    )


def bench_postgres(seconds: float, server: str) -> None:
    name = f"trellis_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate_sync(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bare (id uuid PRIMARY KEY, type text, queue text, payload jsonb,"
                " status text, priority int, run_at float8, created_at float8)"
            )
            row = _ROW.replace("?", "%s")

            def insert() -> None:
                now = time.time()
                conn.execute(row, (uuid.uuid4(), json.dumps({"n": 1}), now, now))

            q = _sql.queries("postgres")

            def floor() -> None:
                row, events = by_hand()
                with conn.transaction(), conn.pipeline():
                    conn.execute(q["insert_task"], row)
                    for event in events:
                        conn.execute(q["insert_event"], event)
                    conn.execute(q["notify"], {"origin": "bench"})

            def enqueue() -> None:
                with conn.transaction():
                    postgres.enqueue(conn, "noop", {"n": 1})

            found = best(
                5,
                seconds / 5,
                raw=insert,
                floor=floor,
                ours=enqueue,
                auto=lambda: postgres.enqueue(conn, "noop", {"n": 1}),
            )
            raw, ours, auto, low = found["raw"], found["ours"], found["auto"], found["floor"]
        print(
            f"postgres: bare autocommit INSERT {raw:>7,.0f}/s   the store's statements by hand "
            f"{low:>7,.0f}/s   enqueue in a transaction {ours:>7,.0f} tasks/s "
            f"({100 * ours / raw:.0f}% of bare, {100 * ours / low:.0f}% of by hand)   on "
            f"autocommit {auto:>7,.0f} tasks/s ({100 * auto / raw:.0f}% of bare)  "
            f"target >= 90% of bare: {'PASS' if ours >= 0.9 * raw else 'FAIL'}"
        )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bench_sqlite(args.seconds)
    bench_postgres(args.seconds, args.pg)
