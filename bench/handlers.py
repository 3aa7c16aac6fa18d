"""Handlers that are not ``async``: CPU-bound and blocking work as async, thread and process.

Prints, in one run:

1. the single-core rate of a fixed piece of pure-Python work (about 20 ms, calibrated at
   the start), called in a plain loop;
2. tasks/s of that work as an ``async def`` handler, as jobs sent straight to the process
   pool actor, and as a ``def`` handler in threads (``executor="thread"``) and in the
   process pool (``executor="process"``), each against the single-core rate;
3. tasks/s of a ``time.sleep(0.05)`` handler in 8, 32 and 64 threads, against the ideal
   (threads / 0.05 s);
4. for each run, ``GET /health`` p50/p99 measured while it runs, from a real server
   (``serve`` on 127.0.0.1:0) in the same process.

The thread and process rows need ``@app.task(executor=...)`` and the ``threads`` and
``processes`` runtime options; in a build without them those rows print as skipped and the
rest still runs.

    python bench/handlers.py [--tasks 100] [--sleep-tasks 640]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py shares its name with the standard library's ``http``, which httpx imports:
# keep this folder off the import path (pool processes, which run this file again to find
# its handlers, get the same path).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
# ... but after everything else, so that the work's module is found (``_cpu_work``).
sys.path.append(str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import trio  # noqa: E402

import trellis_actors as ta  # noqa: E402
from trellis_actors.http import ServerConfig, serve  # noqa: E402
from trellis_actors.runtime.config import RuntimeConfig  # noqa: E402
from trellis_actors.runtime.processes import ProcessPool, RunInProcess  # noqa: E402

CORES = os.cpu_count() or 1
HAS_EXECUTOR = "executor" in inspect.signature(ta.App.task).parameters
OPTIONS = {f.name for f in dataclasses.fields(RuntimeConfig)}
HAS_THREADS = HAS_EXECUTOR and "threads" in OPTIONS
HAS_PROCESSES = HAS_EXECUTOR and "processes" in OPTIONS
ENDED = (ta.TaskStatus.COMPLETED, ta.TaskStatus.DEAD, ta.TaskStatus.CANCELLED)


from _cpu_work import cpu_sync, nap, work  # noqa: E402  (module level: pool processes import it)


async def cpu_async(ctx: ta.TaskContext, payload: dict[str, int]) -> int:
    return work(payload["n"])


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def calibrate(target: float = 0.020) -> int:
    """The ``n`` for which ``work(n)`` takes about ``target`` seconds."""
    n = 10_000
    while True:
        began = time.perf_counter()
        work(n)
        took = time.perf_counter() - began
        if took > 0.005:
            return max(1, int(n * target / took))
        n *= 4


def single_core_rate(n: int, seconds: float = 2.0) -> float:
    calls, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        work(n)
        calls += 1
    return calls / elapsed


def make_app() -> ta.App:
    app = ta.App()
    app.task(name="cpu_async")(cpu_async)
    if HAS_EXECUTOR:
        app.task(name="cpu_thread", executor="thread")(cpu_sync)
        app.task(name="cpu_process", executor="process")(cpu_sync)
        app.task(name="nap", executor="thread")(nap)
    return app


# -- one measured run --------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    rate: float
    health: list[float]

    def line(self, label: str, against: float, what: str) -> str:
        p50, p99 = (1000 * percentile(self.health, q) for q in (0.5, 0.99))
        return (
            f"{label:<32} {self.rate:>8,.1f} tasks/s  {100 * self.rate / against:>5.0f}% of {what}"
            f"   /health p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  ({len(self.health)} probes)"
        )


#: Runs its work on a runtime and returns the rate in tasks/s (it times itself, so that
#: warming up, such as starting pool processes, is left out).
Drive = Callable[[ta.Runtime], Awaitable[float]]


async def measure(app: ta.App, drive: Drive, **config: Any) -> Run:
    """Run what ``drive`` runs to completion while probing ``/health``."""
    health: list[float] = []
    async with ta.open_runtime(app, **config) as rt, trio.open_nursery() as nursery:
        urls = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        done = trio.Event()

        async def probe(client: httpx.AsyncClient) -> None:
            while not done.is_set():
                began = time.perf_counter()
                (await client.get("/health")).raise_for_status()
                health.append(time.perf_counter() - began)
                await trio.sleep(0.02)

        async with httpx.AsyncClient(base_url=urls[0]) as client, trio.open_nursery() as probes:
            probes.start_soon(probe, client)
            rate = await drive(rt)
            done.set()
        nursery.cancel_scope.cancel()
    return Run(rate, health)


def tasks_of(type: str, payload: Any, tasks: int) -> Drive:
    """Submit ``tasks`` tasks of ``type`` (after one to warm up) and wait for them all."""

    async def drive(rt: ta.Runtime) -> float:
        await rt.wait((await rt.submit(type, payload)).id)  # starts a pool, if any
        async with rt.subscribe() as events:
            began = time.perf_counter()
            await rt.submit_many([{"type": type, "payload": payload}] * tasks)
            finished = 0
            async for batch in events.batches():
                finished += sum(1 for move in batch if move.task.status in ENDED)
                if finished >= tasks:
                    break
        return tasks / (time.perf_counter() - began)

    return drive


def pool_jobs(payload: Any, tasks: int) -> Drive:
    """The process pool alone: ``tasks`` jobs, two per process in flight."""

    async def drive(rt: ta.Runtime) -> float:
        pool = ProcessPool(CORES)
        text = json.dumps(payload)

        async def feed(jobs: Iterable[int]) -> None:
            for i in jobs:
                job = RunInProcess(
                    job=f"{i}:1",
                    handler=cpu_sync,
                    payload=text,
                    task_id=str(i),
                    type="cpu",
                    attempt=1,
                    progress=lambda fraction, message: None,
                )
                await pool.ref.ask(job, timeout=None)

        async def feeders(jobs: Iterable[int], count: int) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(feed, jobs)

        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            await feeders(iter(range(-CORES, 0)), CORES)  # every process started
            began = time.perf_counter()
            await feeders(iter(range(tasks)), 2 * CORES)
            rate = tasks / (time.perf_counter() - began)
            pool.request_stop()
        return rate

    return drive


def skipped(label: str, option: str) -> str:
    return f"{label:<32} skipped: this build has no {option}"


async def main(tasks: int, sleep_tasks: int) -> None:
    app = make_app()
    n = calibrate()
    single = single_core_rate(n)
    print(f"{CORES} cores; work(n={n:,}) takes {1000 / single:.1f} ms")
    print(f"{'single core, plain loop':<32} {single:>8,.1f} tasks/s")
    cpu = {"n": n}
    run = await measure(app, tasks_of("cpu_async", cpu, tasks), workers=CORES)
    print(run.line("cpu, async", single, "single core"))
    run = await measure(app, pool_jobs(cpu, tasks), workers=CORES)
    print(run.line(f"cpu, process pool alone ({CORES})", single, "single core"))
    if HAS_THREADS:
        drive = tasks_of("cpu_thread", cpu, tasks)
        run = await measure(app, drive, workers=CORES, threads=CORES)
        print(run.line(f"cpu, thread ({CORES} threads)", single, "single core"))
    else:
        print(skipped("cpu, thread", 'executor="thread" / threads='))
    if HAS_PROCESSES:
        drive = tasks_of("cpu_process", cpu, tasks)
        run = await measure(app, drive, workers=2 * CORES, processes=CORES)
        print(run.line(f"cpu, process ({CORES} processes)", single, "single core"))
    else:
        print(skipped("cpu, process", 'executor="process" / processes='))
    for threads in (8, 32, 64):
        label = f"sleep 50 ms, {threads} threads"
        if not HAS_THREADS:
            print(skipped(label, 'executor="thread" / threads='))
            continue
        drive = tasks_of("nap", None, sleep_tasks)
        run = await measure(app, drive, workers=threads, threads=threads)
        print(run.line(label, threads / 0.05, "ideal"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--sleep-tasks", type=int, default=640)
    args = parser.parse_args()
    trio.run(main, args.tasks, args.sleep_tasks)
