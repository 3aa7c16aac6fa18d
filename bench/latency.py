"""Submit-to-start latency on an idle node, beside the raw limits, in one run.

For each store (memory, SQLite on a temporary file, PostgreSQL in a fresh database that is
dropped afterwards) it measures, one task at a time, each waited on until it starts:

* embedded: ``rt.submit`` in the same trio program as the runtime;
* HTTP: ``POST /tasks`` on one keep-alive connection (httpx) to a ``trellis serve``
  process (8 workers).

A task's start is the time its handler is entered: the ``stamp`` handler sends
``time.time()`` in a UDP datagram to the measuring process, which subtracts the time it
sent the request (same clock, same machine). Beside them, from the same run: a bare
Quart-Trio endpoint's round trip on one keep-alive connection, a bare SQLite
``INSERT`` + ``COMMIT`` (WAL, synchronous=NORMAL, as the store uses), and a bare
PostgreSQL autocommit ``INSERT``. With ``--throughput``, also the draining throughput of
no-op tasks on SQLite and PostgreSQL. With ``--rounds N`` each figure is measured N
times and the best round counts (the round with the lowest p50; the highest throughput),
as other load on the machine disturbs every round alike.

    python bench/latency.py [--samples 400] [--rounds 1] [--stores memory,sqlite,postgres]
                            [--throughput]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py shares its name with the standard library's ``http``, which httpx imports:
# this folder goes last on the import path (``python bench/latency.py`` puts it first).
BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != BENCH] + [BENCH]

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import AbstractContextManager, contextmanager  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import trio  # noqa: E402
from _raw import noop_throughput, percentile  # noqa: E402

import trellis_actors as ta  # noqa: E402

PYTHON = sys.executable
HERE = Path(__file__).resolve()
PG_URL = os.environ.get("TRELLIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WARM_UP = 30

# -- the task type (also loaded by the server: --app latency:app) ------------------------

app = ta.App()


@app.task
async def stamp(ctx: ta.TaskContext, payload: dict[str, Any]) -> None:
    """Tell the measuring process, by UDP, the moment this handler was entered."""
    entered = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(f"{ctx.task_id} {entered!r}".encode(), ("127.0.0.1", payload["port"]))


@app.task
async def noop(ctx: ta.TaskContext, payload: object) -> None:
    return None


def _listener() -> socket.socket:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10.0)
    return udp


def _entered(udp: socket.socket, task_id: str) -> float:
    while True:
        name, at = udp.recv(256).decode().split()
        if name == task_id:
            return float(at)


def _summary(delays: list[float]) -> str:
    p50, p99 = percentile(delays, 0.50) * 1e3, percentile(delays, 0.99) * 1e3
    return f"p50 {p50:7.3f} ms   p99 {p99:7.3f} ms"


# -- embedded -----------------------------------------------------------------------------


async def embedded(store: str, samples: int) -> list[float]:
    udp = _listener()
    udp.setblocking(False)
    port = udp.getsockname()[1]
    tsock = trio.socket.from_stdlib_socket(udp)
    delays = []
    async with ta.open_runtime(app, store=store, workers=8) as rt:
        for index in range(samples + WARM_UP):
            sent = time.time()
            task = await rt.submit("stamp", {"port": port})
            while True:
                name, at = (await tsock.recv(256)).decode().split()
                if name == task.id:
                    break
            if index >= WARM_UP:
                delays.append(float(at) - sent)
    tsock.close()
    return delays


# -- HTTP -----------------------------------------------------------------------------------


class Server:
    """A server process whose address is read from its stdout."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{command} exited before listening")
            if line.startswith("listening on "):
                self.url = line.split()[2]
                return
        raise RuntimeError(f"{command} did not start within 60 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextmanager
def serving(command: list[str]) -> Iterator[Server]:
    server = Server(command)
    try:
        yield server
    finally:
        server.stop()


def over_http(store: str, samples: int) -> list[float]:
    import httpx

    # ``trellis serve``, with this folder last on the import path for ``--app latency:app``.
    cli = f"import sys; sys.path.append({BENCH!r}); from trellis_actors.cli import main; main()"
    command = [PYTHON, "-c", cli, "serve", "--bind", "127.0.0.1:0"]
    command += ["--store", store, "--workers", "8", "--log-level", "warning"]
    command += ["--app", "latency:app"]
    udp = _listener()
    port = udp.getsockname()[1]
    delays = []
    with serving(command) as server, httpx.Client(base_url=server.url) as client:
        body = {"type": "stamp", "payload": {"port": port}}
        for index in range(samples + WARM_UP):
            sent = time.time()
            response = client.post("/tasks", json=body)
            response.raise_for_status()
            at = _entered(udp, response.json()["id"])
            if index >= WARM_UP:
                delays.append(at - sent)
    udp.close()
    return delays


# -- raw limits -------------------------------------------------------------------------------


def bare_server() -> None:
    """A minimal Quart-Trio app on 127.0.0.1:0 answering ``POST /`` with a constant."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import Response, request
    from quart_trio import QuartTrio

    bare = QuartTrio("bare")

    @bare.post("/")
    async def constant() -> Response:
        await request.get_data()
        return Response('{"id": "constant"}', 201, content_type="application/json")

    async def main() -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(serve, bare, config)
                print(f"listening on {urls[0]}", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()

    trio.run(main)


def bare_http(samples: int) -> list[float]:
    import httpx

    delays = []
    with (
        serving([PYTHON, str(HERE), "bare-server"]) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for index in range(samples + WARM_UP):
            sent = time.time()
            client.post("/", json={"type": "stamp"}).raise_for_status()
            if index >= WARM_UP:
                delays.append(time.time() - sent)
    return delays


def _timed(samples: int, step: Callable[[int], None]) -> list[float]:
    delays = []
    for index in range(samples + WARM_UP):
        began = time.time()
        step(index)
        if index >= WARM_UP:
            delays.append(time.time() - began)
    return delays


def bare_sqlite(path: str, samples: int) -> list[float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE bare (id TEXT PRIMARY KEY, body TEXT)")

    def insert(index: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bare VALUES (?, ?)", (str(index), '{"port": 1}'))
        conn.execute("COMMIT")

    try:
        return _timed(samples, insert)
    finally:
        conn.close()


def bare_postgres(url: str, samples: int) -> list[float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bare (id text PRIMARY KEY, body jsonb)")

        def insert(index: int) -> None:
            conn.execute("INSERT INTO bare VALUES (%s, %s)", (str(index), '{"port": 1}'))

        return _timed(samples, insert)


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"trellis_latency_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# -- the run ------------------------------------------------------------------------------------


ROUNDS = 1


def row(label: str, measure: Callable[[], list[float]]) -> None:
    """Print the best of ``ROUNDS`` measurements: the one with the lowest p50."""
    delays = min((measure() for _ in range(ROUNDS)), key=lambda d: percentile(d, 0.5))
    print(f"  {label:<34} {_summary(delays)}", flush=True)


def rate_row(store: Callable[[], AbstractContextManager[str]], tasks: int) -> None:
    best = 0.0
    for _ in range(ROUNDS):
        with store() as url:
            best = max(best, trio.run(_drain, url, tasks))
    print(f"  {'draining no-op tasks':<34} {best:>9,.0f} tasks/s", flush=True)


@contextmanager
def fresh_file(folder: str) -> Iterator[str]:
    path = Path(folder) / f"{uuid.uuid4().hex}.db"
    yield f"sqlite:///{path}"


def main(args: argparse.Namespace) -> None:
    global ROUNDS
    ROUNDS = args.rounds
    stores = args.stores.split(",")
    n = args.samples
    print(f"submit-to-start, {n} tasks one at a time (after {WARM_UP} to warm up)")
    row("raw: bare Quart-Trio round trip", lambda: bare_http(n))
    with tempfile.TemporaryDirectory() as scratch:
        if "memory" in stores:
            print("memory://")
            row("embedded rt.submit", lambda: trio.run(embedded, "memory://", n))
            row("HTTP POST /tasks", lambda: over_http("memory://", n))
        if "sqlite" in stores:
            print("sqlite (temporary file)")

            def on_file(measure: Callable[[str, int], list[float]]) -> list[float]:
                with fresh_file(scratch) as url:
                    return measure(url, n)

            def bare(url: str, n: int) -> list[float]:
                return bare_sqlite(url.removeprefix("sqlite:///"), n)

            row("raw: SQLite INSERT + COMMIT", lambda: on_file(bare))
            row("embedded rt.submit", lambda: on_file(lambda u, n: trio.run(embedded, u, n)))
            row("HTTP POST /tasks", lambda: on_file(over_http))
            if args.throughput:
                rate_row(lambda: fresh_file(scratch), args.tasks)
    if "postgres" in stores:
        print("postgresql (a fresh database)")

        def in_database(measure: Callable[[str, int], list[float]]) -> list[float]:
            with fresh_database() as url:
                return measure(url, n)

        row("raw: PostgreSQL autocommit INSERT", lambda: in_database(bare_postgres))
        row("embedded rt.submit", lambda: in_database(lambda u, n: trio.run(embedded, u, n)))
        row("HTTP POST /tasks", lambda: in_database(over_http))
        if args.throughput:
            rate_row(fresh_database, args.tasks)


async def _drain(store: str, tasks: int) -> float:
    return await noop_throughput(app, store=store, tasks=tasks, workers=8)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("bare-server",))
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=1, help="the best round counts")
    parser.add_argument("--stores", default="memory,sqlite,postgres")
    parser.add_argument("--throughput", action="store_true", help="also drain no-op tasks")
    parser.add_argument("--tasks", type=int, default=50_000, help="for --throughput")
    arguments = parser.parse_args()
    if arguments.command == "bare-server":
        bare_server()
    else:
        main(arguments)
