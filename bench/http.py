"""HTTP API throughput against real servers, loaded from a separate process, in one run.

Measures, on loopback only, with bounded request counts and time:

1. a bare Quart-Trio app on Hypercorn answering ``POST /`` with a constant: the HTTP limit;
2. ``POST /tasks`` with one task per request on ``trellis serve`` (requests/s, and as a
   percentage of the bare endpoint; target >= 60%);
3. ``POST /tasks`` with batches of 1,000 tasks (tasks/s; target >= 10,000).

Each server runs in its own process; the load comes from a third one (a small asyncio
HTTP/1.1 client with keep-alive connections, so that the client is not the limit).

    python bench/http.py [--store sqlite|memory] [--workers 8] [--connections 16] [--rounds 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file shares its name with the standard library's ``http``, which the HTTP stack
# imports: keep its folder off the import path (``python bench/http.py`` puts it first).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

PYTHON = sys.executable
HERE = Path(__file__).resolve()
ONE_TASK = {"type": "echo", "payload": {"order": 42, "email": "ada@example.com"}}


# -- the bare server (its own process) --------------------------------------------------


def bare_server() -> None:
    """A minimal Quart-Trio app on 127.0.0.1:0: the most this HTTP stack can do."""
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import Response, request
    from quart_trio import QuartTrio

    app = QuartTrio("bare")
    body = json.dumps({"id": "constant", "status": "queued"})

    @app.post("/")
    async def constant() -> Response:
        await request.get_data()
        return Response(body, 201, content_type="application/json")

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


# -- the load generator (its own process) -----------------------------------------------


async def _connection(host: str, port: int, request: bytes, left: list[int], end: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while left[0] > 0 and time.perf_counter() < end:
            left[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            if status not in (200, 201):
                raise RuntimeError(f"unexpected status {status}: {head!r}")
            done += 1
    finally:
        writer.close()
    return done


async def _load(
    url: str, path: str, body: bytes, requests: int, connections: int, limit: float
) -> dict[str, float]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    left = [requests]
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(_connection(host, int(port), request, left, started + limit) for _ in range(connections))
    )
    return {"requests": sum(counts), "seconds": time.perf_counter() - started}


def load(args: argparse.Namespace) -> None:
    body = Path(args.body).read_bytes()
    result = asyncio.run(
        _load(args.url, args.path, body, args.requests, args.connections, args.limit)
    )
    print(json.dumps(result))


# -- the run ---------------------------------------------------------------------------


class Process:
    """A server process whose address is read from its stdout."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{command} exited before listening")
            if found := re.match(r"listening on (\S+)", line):
                self.url = found.group(1)
                return
        raise RuntimeError(f"{command} did not start within 30 s")

    def cpu(self) -> float:
        """CPU seconds the process has used so far (Linux; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_load(
    server: Process, path: str, body: object, requests: int, connections: int, limit: float
) -> tuple[float, float]:
    """Requests per second, measured by a separate load process, and the server's CPU
    microseconds per request (a figure that other load on the machine disturbs less)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(body, file)
    command = [PYTHON, str(HERE), "load", server.url, path, file.name]
    command += ["--requests", str(requests), "--connections", str(connections)]
    command += ["--limit", str(limit)]
    cpu = server.cpu()
    output = subprocess.run(command, capture_output=True, text=True, timeout=limit + 60, check=True)
    cpu = server.cpu() - cpu
    Path(file.name).unlink()
    result = json.loads(output.stdout)
    return result["requests"] / result["seconds"], 1e6 * cpu / result["requests"]


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = "memory://" if args.store == "memory" else f"sqlite:///{scratch}/bench.db"
        command = [PYTHON, "-m", "trellis_actors", "serve", "--bind", "127.0.0.1:0"]
        command += ["--store", store, "--workers", str(args.workers), "--log-level", "warning"]
        bare = Process([PYTHON, str(HERE), "bare-server"], Path(scratch))
        trellis = Process(command, Path(scratch))
        try:
            run_load(bare, "/", ONE_TASK, 500, args.connections, 10)  # warm up
            run_load(trellis, "/tasks", ONE_TASK, 500, args.connections, 10)
            # Rounds alternate between the two servers, and the best of each counts: other
            # load on the machine then disturbs both alike.
            bares, singles = [], []
            for _ in range(args.rounds):
                bares.append(run_load(bare, "/", ONE_TASK, args.requests, args.connections, 20))
                singles.append(
                    run_load(trellis, "/tasks", ONE_TASK, args.requests, args.connections, 20)
                )
            batch = [ONE_TASK] * 1000
            batches, batch_cpu = max(
                run_load(trellis, "/tasks", batch, args.batches, 4, 30) for _ in range(args.rounds)
            )
        finally:
            bare.stop()
            trellis.stop()
    bare_rate, bare_cpu = max(bares)
    single, single_cpu = max(singles)
    share = 100 * single / bare_rate
    print(f"store {store.split(':')[0]}, {args.workers} workers, {args.connections} connections")
    print(
        f"bare Quart-Trio POST (constant):     {bare_rate:>9,.0f} requests/s"
        f"   server CPU {bare_cpu:>6,.0f} us/request"
    )
    verdict = "PASS" if share >= 60 else "FAIL"
    print(
        f"POST /tasks, one task per request:   {single:>9,.0f} requests/s"
        f"   server CPU {single_cpu:>6,.0f} us/request"
        f"   {share:.0f}% of bare, target >= 60%: {verdict}"
    )
    verdict = "PASS" if batches * 1000 >= 10_000 else "FAIL"
    print(
        f"POST /tasks, batches of 1,000:       {batches * 1000:>9,.0f} tasks/s   "
        f"   server CPU {batch_cpu / 1000:>6,.0f} us/task      target >= 10,000: {verdict}"
    )
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs while measuring)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("bare-server", help="(internal) run the bare server")
    loader = commands.add_parser("load", help="(internal) load a server, print JSON")
    loader.add_argument("url")
    loader.add_argument("path")
    loader.add_argument("body")
    loader.add_argument("--requests", type=int, default=5000)
    loader.add_argument("--connections", type=int, default=16)
    loader.add_argument("--limit", type=float, default=20.0, help="seconds at most")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=5000, help="per single-task run")
    parser.add_argument("--batches", type=int, default=40, help="batch requests of 1,000")
    parser.add_argument("--rounds", type=int, default=2, help="the best round counts")
    arguments = parser.parse_args()
    if arguments.command == "bare-server":
        bare_server()
    elif arguments.command == "load":
        load(arguments)
    else:
        main(arguments)
