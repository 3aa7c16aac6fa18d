"""End-to-end throughput and latency of the in-memory runtime.

Prints, in one run: raw trio one-hop channel throughput; 50,000 no-op tasks submitted with
``submit_many`` and run to completion (tasks/s, and as a percentage of the raw figure); and
submit-to-start latency p50/p99 for tasks submitted one at a time to an idle runtime.

    python bench/runtime.py [--tasks 50000] [--workers 8]
"""

from __future__ import annotations

import argparse
import time

import trio
from _raw import noop_throughput, one_hop_throughput, percentile

import trellis_actors as ta


def make_app() -> tuple[ta.App, dict[str, float]]:
    app = ta.App()
    started: dict[str, float] = {}

    @app.task
    async def noop(ctx: ta.TaskContext, payload: object) -> None:
        return None

    @app.task
    async def stamp(ctx: ta.TaskContext, payload: object) -> None:
        started[ctx.task_id] = time.perf_counter()

    return app, started


async def throughput(app: ta.App, tasks: int, workers: int) -> float:
    return await noop_throughput(app, store="memory://", tasks=tasks, workers=workers)


async def latency(app: ta.App, started: dict[str, float], samples: int) -> list[float]:
    delays = []
    async with ta.open_runtime(app, workers=8) as rt:
        for _ in range(samples):
            submitted = time.perf_counter()
            task = await rt.submit("stamp")
            await rt.wait(task.id)
            delays.append(started.pop(task.id) - submitted)
    return delays


async def main(tasks: int, workers: int) -> None:
    app, started = make_app()
    raw = await one_hop_throughput()
    print(f"raw trio one-hop channel:        {raw:>10,.0f} msgs/s")
    rate = max([await throughput(app, tasks, workers) for _ in range(3)])
    target = "PASS" if rate >= 20_000 else "FAIL"
    print(
        f"end to end, {tasks:,} no-op tasks: {rate:>10,.0f} tasks/s "
        f"({100 * rate / raw:.1f}% of raw one-hop)  target >= 20,000: {target}"
    )
    delays = await latency(app, started, 2000)
    p50, p99 = percentile(delays, 0.50) * 1e3, percentile(delays, 0.99) * 1e3
    target = "PASS" if p50 < 1.0 else "FAIL"
    print(
        f"submit-to-start latency:         p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
        f"target p50 < 1 ms: {target}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    trio.run(main, args.tasks, args.workers)
