"""Workflows end to end on SQLite and PostgreSQL, each figure beside its raw limit.

Per store, on fresh databases (PostgreSQL: new databases on ``--pg``, dropped after):

* the raw limit: ``--workflows`` x 10 plain no-op tasks submitted in batches and run to
  completion by one runtime (tasks/s): what the same steps cost as plain tasks;
* ``--workflows`` workflows of 10 no-op steps each, submitted together and run to
  completion: workflows/s, their steps/s, and the steps/s as a share of the raw limit;
* the overhead of a step: time per step less time per plain task, in milliseconds of one
  node's time (a step is a plain task plus its workflow's continuation: load the history,
  replay the function, write the suspend and the next step, and wake again).

The machine is shared: each figure is the best of ``--rounds`` turns, taken alternately
with its limit, so that other load disturbs both alike.

    python bench/workflows.py [--workflows 300] [--workers 8] [--rounds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import logging
import os

import structlog
import trio
from _raw import noop_throughput, run_through
from stores import Fresh, add_pg_argument, pg_reachable, postgres_databases, sqlite_files

import trellis_actors as ta

STEPS = 10


def make_app() -> ta.App:
    app = ta.App()

    @app.task
    async def noop(ctx: ta.TaskContext, payload: object) -> None:
        return None

    @app.workflow
    async def ten(wf: ta.WorkflowContext, payload: object) -> int:
        for _ in range(STEPS):
            await wf.run(noop)
        return STEPS

    return app


async def measure(name: str, fresh: Fresh, args: argparse.Namespace) -> None:
    app = make_app()
    plain: list[float] = []
    flows: list[float] = []
    for _ in range(args.rounds):
        async with fresh() as url:
            plain.append(
                await noop_throughput(
                    app, store=url, tasks=args.workflows * STEPS, workers=args.workers
                )
            )
        async with fresh() as url:
            flows.append(
                await run_through(app, "ten", store=url, tasks=args.workflows, workers=args.workers)
            )
    raw, rate = max(plain), max(flows)
    steps = rate * STEPS
    print(f"{name}: raw limit, plain no-op tasks:     {raw:>9,.0f} tasks/s")
    print(
        f"{name}: workflows of {STEPS} no-op steps:     {rate:>9,.1f} workflows/s = "
        f"{steps:,.0f} steps/s ({100 * steps / raw:.0f}% of the raw limit; runs: "
        f"{', '.join(f'{r:,.1f}' for r in flows)})"
    )
    overhead = (1 / steps - 1 / raw) * 1e3
    print(
        f"{name}: a step costs {1e3 / steps:.2f} ms, a plain task {1e3 / raw:.2f} ms: "
        f"overhead {overhead:.2f} ms per step"
    )


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}  (2 cores)")
    with sqlite_files() as fresh:
        await measure("sqlite", fresh, args)
    if pg_reachable(args.pg):
        with postgres_databases(args.pg) as fresh:
            await measure("postgres", fresh, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    add_pg_argument(parser)
    trio.run(main, parser.parse_args())
