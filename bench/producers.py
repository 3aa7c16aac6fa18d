"""Producers against real ``trellis serve`` nodes, each beside its raw limit, in one run.

Starts a node on SQLite and one on PostgreSQL (a fresh database, dropped at the end), each a
``trellis serve`` subprocess on 127.0.0.1:0 working only the ``default`` queue, and a bare
Quart-Trio app in a third process. This process is the producer. It prints, per path:

* tasks/s, one task per call: ``Client.submit`` (one keep-alive connection),
  ``AsyncClient.submit`` (16 concurrent submitters, under trio), ``postgres.enqueue`` in a
  transaction per task (no idempotency key) and ``sqlite.enqueue`` from this second process;
  these tasks go to a queue the nodes do not work, so the figure is the submission alone;
* its raw limit, measured in turns with it: ``httpx`` posting the same JSON to the bare
  app (one keep-alive connection, or 16 concurrent ones), a bare ``INSERT`` + ``COMMIT`` of
  the same task row into a scratch copy of the SQLite database on a connection set up as
  the store's, and a bare autocommit ``INSERT`` of the same task row in the PostgreSQL
  database; and the ratio;
* submit-to-start latency p50/p99: one ``echo`` task at a time on the ``default`` queue,
  waited for, its ``started_at`` (the node's wall clock) less the time just before the
  submission (this process's wall clock: the same machine's).

The machine is shared: each figure is the best of ``--rounds`` turns taken alternately
with its limit, so that other load disturbs both alike.

    python bench/producers.py [--seconds 1.5] [--rounds 3] [--samples 300] [--pg URL]
"""

# ruff: noqa: E402 (the imports must come after the import path is fixed)

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py shadows the standard library's ``http``, which httpx imports: keep this
# folder off the import path (``python bench/producers.py`` puts it first).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from typing import Any, NamedTuple

import httpx
import psycopg
import trio

from trellis_actors import postgres, sqlite
from trellis_actors.client import AsyncClient, Client
from trellis_actors.lifecycle import NewTask
from trellis_actors.stores import _sql
from trellis_actors.stores._sqllogic import TaskLogic
from trellis_actors.stores.base import arrive
from trellis_actors.stores.sqlite import connect

HERE = Path(__file__).resolve()
PAYLOAD = {"order": 42, "email": "ada@example.com"}
ONE_TASK = {"type": "echo", "payload": PAYLOAD, "queue": "bench"}
CONCURRENCY = 16


# -- the bare server (its own process) --------------------------------------------------


def bare_server() -> None:
    """A minimal Quart-Trio app on 127.0.0.1:0 that parses the JSON it is sent and answers
    with a task-sized JSON object: the most this HTTP stack can do."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import Response, request
    from quart_trio import QuartTrio

    app = QuartTrio("bare")
    answer = json.dumps(
        {"id": str(uuid.uuid4()), "type": "echo", "queue": "bench", "status": "queued"}
        | {"payload": PAYLOAD, "priority": 0, "attempt": 0, "max_attempts": 3}
        | dict.fromkeys(("created_at", "queued_at", "run_at"), "2026-01-31T12:00:00.000000Z")
    )

    @app.post("/tasks")
    async def constant() -> Response:
        json.loads(await request.get_data(as_text=False))
        return Response(answer, 201, content_type="application/json")

    async def main() -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(serve, app, config)
                print(f"listening on {urls[0]}", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()

    trio.run(main)


class Process:
    """A server process whose address is read from its stdout."""

    def __init__(self, command: list[str], cwd: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        while not (
            found := re.match(r"listening on (\S+)", line := self.process.stdout.readline())
        ):
            if not line:
                raise RuntimeError(f"{command} exited before listening")
        self.url = found.group(1)
        # Keep reading its stdout, so that it never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def node(store: str, cwd: str) -> Process:
    command = [sys.executable, "-m", "trellis_actors", "serve", "--bind", "127.0.0.1:0"]
    command += ["--store", store, "--queues", "default", "--log-level", "warning"]
    return Process(command, cwd)


# -- measuring ----------------------------------------------------------------------------


#: A measurement: calls per second, and CPU microseconds per call of the process that
#: does the work (the server for HTTP, this process for the direct paths): other load on
#: the machine stretches the first much more than the second.
Measured = tuple[float, float]
Clock = Callable[[], float]


def cpu_of(pid: int) -> Clock:
    """CPU seconds used so far by process ``pid`` (Linux; 0 elsewhere)."""

    def clock() -> float:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    return clock


def rate(seconds: float, step: Callable[[], object], clock: Clock = time.process_time) -> Measured:
    """Calls per second of ``step`` over ``seconds``, after a short warm-up."""
    for _ in range(20):
        step()
    done, began, cpu = 0, time.perf_counter(), clock()
    while (elapsed := time.perf_counter() - began) < seconds:
        for _ in range(20):
            step()
        done += 20
    return done / elapsed, 1e6 * (clock() - cpu) / done


def best(rounds: int, seconds: float, **steps: Callable[[float], Measured]) -> dict[str, Measured]:
    """The best of ``rounds`` measurements of each of ``steps``, taken in turns: the
    highest rate and the lowest CPU per call."""
    found = dict.fromkeys(steps, (0.0, float("inf")))
    for _ in range(rounds):
        for name, measure in steps.items():
            (high, low), (now, cpu) = found[name], measure(seconds)
            found[name] = (max(high, now), min(low, cpu))
    return found


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency(samples: int, submit: Callable[[], str], client: Client) -> tuple[float, float]:
    """p50 and p99 of submit-to-start, in ms: one task at a time, each waited for."""
    delays = []
    for _ in range(samples + 10):
        before = time.time()
        task_id = submit()
        started = client.wait(task_id, timeout=30).started_at
        assert started is not None
        delays.append(started - before)
    delays = delays[10:]  # the first few warm up both sides
    return 1e3 * percentile(delays, 0.5), 1e3 * percentile(delays, 0.99)


def async_latency(samples: int, url: str) -> tuple[float, float]:
    async def main() -> list[float]:
        delays = []
        async with AsyncClient(url) as client:
            for _ in range(samples + 10):
                before = time.time()
                task = await client.submit("echo", PAYLOAD)
                started = (await client.wait(task, timeout=30)).started_at
                assert started is not None
                delays.append(started - before)
        return delays[10:]

    delays = trio.run(main)
    return 1e3 * percentile(delays, 0.5), 1e3 * percentile(delays, 0.99)


def task_row() -> dict[str, Any]:
    """A new task's row as the store writes it, built without any checking."""
    steps = arrive(NewTask("echo", PAYLOAD, queue="bench"), time.time())
    return TaskLogic.row(steps[-1].task)


# -- the paths ----------------------------------------------------------------------------


def http_paths(
    server: Process, bare_server: Process, args: argparse.Namespace
) -> dict[str, Measured]:
    """Client and AsyncClient submission rates beside httpx posting to the bare app."""
    url, bare_url = server.url, bare_server.url
    ours, theirs = cpu_of(server.process.pid), cpu_of(bare_server.process.pid)
    body = json.dumps(ONE_TASK).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    with Client(url) as client, httpx.Client(base_url=bare_url, headers=headers) as bare:

        def submit(seconds: float) -> Measured:
            return rate(seconds, lambda: client.submit("echo", PAYLOAD, queue="bench"), ours)

        def raw(seconds: float) -> Measured:
            post = bare.post
            return rate(seconds, lambda: post("/tasks", content=body).raise_for_status(), theirs)

        def async_submit(seconds: float) -> Measured:
            step = lambda c: c.submit("echo", PAYLOAD, queue="bench")  # noqa: E731
            return _async_rate(seconds, url, step, ours)

        def async_raw(seconds: float) -> Measured:
            step = lambda c: c.post("/tasks", content=body)  # noqa: E731
            return _async_rate(seconds, bare_url, step, theirs, bare=True)

        return best(
            args.rounds, args.seconds, raw=raw, submit=submit, araw=async_raw, asubmit=async_submit
        )


def _async_rate(
    seconds: float, url: str, step: Callable[[Any], Any], clock: Clock, *, bare: bool = False
) -> Measured:
    """Calls per second of ``step(client)`` from ``CONCURRENCY`` trio tasks sharing one
    AsyncClient (or, for the bare app, one httpx.AsyncClient)."""

    async def main() -> Measured:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if bare:
            opened: Any = httpx.AsyncClient(base_url=url, headers=headers, limits=limits)
        else:
            opened = AsyncClient(url)
        async with opened as client:

            async def worker(until: float, counts: list[int]) -> None:
                while time.perf_counter() < until:
                    answer = await step(client)
                    if bare:
                        answer.raise_for_status()
                    counts[0] += 1

            async def run(seconds: float) -> Measured:
                counts = [0]
                began, cpu = time.perf_counter(), clock()
                async with trio.open_nursery() as nursery:
                    for _ in range(CONCURRENCY):
                        nursery.start_soon(worker, began + seconds, counts)
                elapsed = time.perf_counter() - began
                return counts[0] / elapsed, 1e6 * (clock() - cpu) / counts[0]

            await run(0.2)  # warm up: open the connections
            return await run(seconds)

    return trio.run(main)


def sqlite_direct(path: str, scratch: str, args: argparse.Namespace) -> dict[str, Measured]:
    """``sqlite.enqueue`` on the node's file beside a bare INSERT + COMMIT of the same row
    in a scratch copy of the database."""
    copy = os.path.join(scratch, "copy.db")
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    bare = connect(copy)  # the store's settings: WAL, synchronous=NORMAL, busy timeout
    insert = _sql.queries("sqlite")["insert_task"]

    def raw_step() -> None:
        bare.execute("BEGIN IMMEDIATE")
        bare.execute(insert, task_row())
        bare.execute("COMMIT")

    def raw(seconds: float) -> Measured:
        return rate(seconds, raw_step)

    def ours(seconds: float) -> Measured:
        return rate(seconds, lambda: sqlite.enqueue(path, "echo", PAYLOAD, queue="bench"))

    found = best(args.rounds, args.seconds, raw=raw, ours=ours)
    bare.close()
    return found


def postgres_direct(url: str, args: argparse.Namespace) -> dict[str, Measured]:
    """``postgres.enqueue`` in a transaction per task beside a bare autocommit INSERT of the
    same row, in the same database."""
    insert = _sql.queries("postgres")["insert_task"]
    with (
        psycopg.connect(url, autocommit=True) as bare,
        psycopg.connect(url) as conn,
    ):

        def raw(seconds: float) -> Measured:
            return rate(seconds, lambda: bare.execute(insert, task_row()))

        def enqueue_step() -> None:
            with conn.transaction():
                postgres.enqueue(conn, "echo", PAYLOAD, queue="bench")

        def ours(seconds: float) -> Measured:
            return rate(seconds, enqueue_step)

        return best(args.rounds, args.seconds, raw=raw, ours=ours)


# -- the run ---------------------------------------------------------------------------


class Row(NamedTuple):
    """One throughput line: a path beside its raw limit, and what the target compares."""

    path: str
    limit: str
    ours: Measured
    raw: Measured
    target: str  # "NN%" of the raw rate, "NNNN/s" absolute, or "" for none


class Latency(NamedTuple):
    """Submit-to-start p50/p99 beside the raw call's own p50/p99 (the floor), in ms."""

    path: str
    p50: float
    p99: float
    limit: str
    raw_p50: float
    raw_p99: float
    target_p50: float


def call_time(samples: int, step: Callable[[], object]) -> tuple[float, float]:
    """p50 and p99 of how long ``step`` takes, in ms."""
    times = []
    for _ in range(samples + 10):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    times = times[10:]
    return 1e3 * percentile(times, 0.5), 1e3 * percentile(times, 0.99)


def main(args: argparse.Namespace) -> None:
    scratch = tempfile.mkdtemp(prefix="trellis-bench-")
    database = f"trellis_bench_{uuid.uuid4().hex[:12]}"
    pg_url = args.pg.rsplit("/", 1)[0] + f"/{database}"
    sqlite_path = os.path.join(scratch, "node.db")
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    servers: list[Process] = []
    rows: list[Row] = []
    lat: list[Latency] = []
    try:
        bare = Process([sys.executable, str(HERE), "bare-server"], scratch)
        servers.append(bare)
        on_sqlite = node(f"sqlite:///{sqlite_path}", scratch)
        servers.append(on_sqlite)
        on_pg = node(pg_url, scratch)
        servers.append(on_pg)
        for label, server, share in (("SQLite", on_sqlite, "80%"), ("PostgreSQL", on_pg, "70%")):
            found = http_paths(server, bare, args)
            one, many = "bare Quart-Trio, 1 conn", f"bare Quart-Trio, {CONCURRENCY} conc."
            rows.append(Row(f"Client.submit, {label}", one, found["submit"], found["raw"], share))
            rows.append(
                Row(
                    f"AsyncClient x{CONCURRENCY}, {label}",
                    many,
                    found["asubmit"],
                    found["araw"],
                    "",
                )
            )
        found = sqlite_direct(sqlite_path, scratch, args)
        rows.append(
            Row("sqlite.enqueue, 2nd process", "INSERT+COMMIT, scratch copy", found["ours"],
                found["raw"], "10000/s")
        )  # fmt: skip
        found = postgres_direct(pg_url, args)
        rows.append(
            Row("postgres.enqueue, tx per task", "autocommit INSERT", found["ours"], found["raw"],
                "90%")
        )  # fmt: skip
        body = json.dumps(ONE_TASK).encode()
        with (
            Client(on_sqlite.url) as c_sqlite,
            Client(on_pg.url) as c_pg,
            httpx.Client(base_url=bare.url, headers={"Content-Type": "application/json"}) as b,
        ):
            post = "bare Quart-Trio POST"
            for label, client, target_ms in (("SQLite", c_sqlite, 2.0), ("PostgreSQL", c_pg, 3.0)):
                raw = call_time(args.samples, lambda: b.post("/tasks", content=body))
                p50, p99 = latency(
                    args.samples, lambda c=client: c.submit("echo", PAYLOAD).id, client
                )
                lat.append(Latency(f"Client.submit, {label}", p50, p99, post, *raw, target_ms))
                p50, p99 = async_latency(args.samples, client.url)
                lat.append(Latency(f"AsyncClient.submit, {label}", p50, p99, post, *raw, target_ms))
            with closing(connect(os.path.join(scratch, "copy.db"))) as copy:
                insert = _sql.queries("sqlite")["insert_task"]

                def commit_row() -> None:
                    copy.execute("BEGIN IMMEDIATE")
                    copy.execute(insert, task_row())
                    copy.execute("COMMIT")

                raw = call_time(args.samples, commit_row)
            p50, p99 = latency(
                args.samples, lambda: sqlite.enqueue(sqlite_path, "echo", PAYLOAD), c_sqlite
            )
            lat.append(Latency("sqlite.enqueue", p50, p99, "INSERT+COMMIT", *raw, 1.0))
            with psycopg.connect(pg_url) as conn, psycopg.connect(pg_url, autocommit=True) as auto:
                insert = _sql.queries("postgres")["insert_task"]
                raw = call_time(args.samples, lambda: auto.execute(insert, task_row()))

                def pg_submit() -> str:
                    with conn.transaction():
                        return postgres.enqueue(conn, "echo", PAYLOAD)

                p50, p99 = latency(args.samples, pg_submit, c_pg)
            lat.append(Latency("postgres.enqueue", p50, p99, "autocommit INSERT", *raw, 1.0))
    finally:
        for server in servers:
            server.stop()
        sqlite.close()
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(scratch, ignore_errors=True)
    report(rows, lat, args)


def report(rows: list[Row], lat: list[Latency], args: argparse.Namespace) -> None:
    print(
        f"best of {args.rounds} rounds of {args.seconds:g} s each, taken in turns with the raw "
        f"limit; {args.samples} latency samples per path"
    )
    print(
        f"{'path':<32} {'tasks/s':>8} {'CPU us':>7}  {'raw limit':<28} {'raw/s':>8} "
        f"{'CPU us':>7} {'ratio':>6}  target"
    )
    for path, limit, (ours, ours_cpu), (raw, raw_cpu), target in rows:
        ratio = 100 * ours / raw
        if target.endswith("/s"):
            wanted = float(target[:-2])
            verdict = f">= {wanted:,.0f}/s: {'PASS' if ours >= wanted else 'FAIL'}"
        elif target:
            verdict = f">= {target}: {'PASS' if ratio >= float(target[:-1]) else 'FAIL'}"
        else:
            verdict = "(none)"
        print(
            f"{path:<32} {ours:>8,.0f} {ours_cpu:>7,.0f}  {limit:<28} {raw:>8,.0f} "
            f"{raw_cpu:>7,.0f} {ratio:>5.0f}%  {verdict}"
        )
    print("(CPU us: per task, of the server for HTTP, of this process for the direct paths)")
    print()
    print(
        f"{'submit-to-start latency':<32} {'p50 ms':>8} {'p99 ms':>8}  {'raw call':<28} "
        f"{'p50 ms':>8} {'p99 ms':>8}  target"
    )
    for path, p50, p99, limit, raw_p50, raw_p99, target_p50 in lat:
        ok = p50 <= target_p50 and p99 <= 10.0
        print(
            f"{path:<32} {p50:>8.2f} {p99:>8.2f}  {limit:<28} {raw_p50:>8.2f} {raw_p99:>8.2f}  "
            f"p50 <= {target_p50:g} ms, p99 <= 10 ms: {'PASS' if ok else 'FAIL'}"
        )
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("bare-server", help="(internal) run the bare server")
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="the best round counts")
    parser.add_argument("--samples", type=int, default=300, help="latency samples per path")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()
    if arguments.command == "bare-server":
        bare_server()
    else:
        main(arguments)
