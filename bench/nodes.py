"""Two nodes on one PostgreSQL database: how evenly they share slow work, and what a second
node adds to a backlog of no-op tasks.

Prints, in one run:

1. the raw limit: single-row INSERT + COMMIT per second with psycopg on the same server;
2. slow tasks: ``--slow`` tasks of ``--seconds`` each, submitted at once, run by a node
   with ``--workers`` workers and a second with twice as many; the makespan (first
   submission to last finish, as the store recorded them) against the ideal
   (tasks x seconds / all workers), and how many tasks each node ran;
3. no-op tasks: ``--tasks`` no-op tasks run by one node, then by two nodes of the same
   size, in tasks/s (counted from the store's finish times);
4. the nodes registry's heartbeat: the two-node drain of 3. with the heartbeat off, at
   its default (5 s) and at 0.1 s.
5. with ``--limits``: the cost of the cluster-wide limits — no-op tasks on two nodes with
   a ``--rate`` and a ``--concurrency`` limit on the type (high enough not to bind: every
   claim still takes the type's advisory lock, counts what it holds and what started in
   the window, and every start is logged), against the same without limits; then a rate
   that binds (``--binding-rate``), to show the rate achieved.

Each node is a runtime in this process (trio is single-threaded: two nodes here share one
core's event loop, while PostgreSQL and the drivers' threads use the other). A fresh
database ``trellis_bench_<random>`` is made for each measurement and dropped afterwards.

    python bench/nodes.py [--slow 24] [--seconds 0.5] [--workers 2] [--tasks 20000] [--pg URL]
        [--limits [--rate 100000/s] [--concurrency 1000] [--binding-rate 500/s]]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from contextlib import AsyncExitStack

import psycopg
import structlog
import trio
from stores import add_pg_argument, pg_reachable, postgres_databases, raw_postgres

import trellis_actors as ta


def make_app(node: str, ran: Counter[str], seconds: float, **limits: object) -> ta.App:
    app = ta.App()

    @app.task(max_attempts=1)
    async def slow(ctx: ta.TaskContext, payload: object) -> None:
        ran[node] += 1
        await trio.sleep(seconds)

    @app.task(**limits)  # type: ignore[call-overload]  # rate_limit and concurrency
    async def noop(ctx: ta.TaskContext, payload: object) -> None:
        ran[node] += 1

    return app


async def run(
    url: str,
    kind: str,
    count: int,
    workers: list[int],
    seconds: float,
    heartbeat: float | None = 5.0,
    **limits: object,
) -> tuple[float, Counter[str]]:
    """Submit ``count`` tasks of ``kind`` to nodes with the given worker counts, wait for
    all, and return the makespan (store times) and the tasks each node ran."""
    ran: Counter[str] = Counter()
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(
                ta.open_runtime(
                    make_app(f"node-{i + 1}", ran, seconds, **limits),
                    store=url,
                    workers=n,
                    node=f"node-{i + 1}",
                    heartbeat=heartbeat,
                )
            )
            for i, n in enumerate(workers)
        ]
        first = nodes[0]
        for start in range(0, count, 1000):
            await first.submit_many([{"type": kind}] * min(1000, count - start))
        with trio.fail_after(600):
            while (await first.counts()).total(ta.TaskStatus.COMPLETED) < count:  # noqa: ASYNC110 - the other node's finishes are not published here
                await trio.sleep(0.05)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT min(created_at), max(finished_at) FROM trellis_tasks")
        began, last = row.fetchone() or (0.0, 0.0)
    return last - began, ran


def busiest_second(url: str) -> int:
    """The most tasks started in any one second (by the stored started_at)."""
    with psycopg.connect(url) as conn:
        starts = sorted(row[0] for row in conn.execute("SELECT started_at FROM trellis_tasks"))
    peak, first = 0, 0
    for last, at in enumerate(starts):
        while starts[first] <= at - 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}  (2 cores)")
    if not pg_reachable(args.pg):
        return
    with postgres_databases(args.pg) as fresh:
        async with fresh() as url:
            raw = raw_postgres(url)
        print(f"raw limit: {raw:,.0f} single-row INSERT+COMMIT/s (psycopg)")

        small, big = args.workers, 2 * args.workers
        async with fresh() as url:
            makespan, ran = await run(url, "slow", args.slow, [small, big], args.seconds)
        ideal = args.slow * args.seconds / (small + big)
        print(
            f"slow tasks: {args.slow} x {args.seconds}s on nodes of {small} and {big} workers: "
            f"makespan {makespan:.2f}s, ideal {ideal:.2f}s ({makespan / ideal:.0%} of ideal); "
            f"ran {ran['node-1']} and {ran['node-2']} (even share: "
            f"{args.slow * small // (small + big)} and {args.slow * big // (small + big)})"
        )

        async with fresh() as url:
            one, _ = await run(url, "noop", args.tasks, [args.noop_workers], 0)
        async with fresh() as url:
            two, ran = await run(url, "noop", args.tasks, [args.noop_workers] * 2, 0)
        print(
            f"no-op tasks: {args.tasks} on one node {args.tasks / one:,.0f} tasks/s; on two "
            f"nodes {args.tasks / two:,.0f} tasks/s ({one / two:.2f}x one node; ran "
            f"{ran['node-1']} and {ran['node-2']})"
        )
        if not args.limits:
            return
        limits = {"rate_limit": args.rate, "concurrency": args.concurrency}
        async with fresh() as url:
            limited, ran = await run(url, "noop", args.tasks, [args.noop_workers] * 2, 0, **limits)
        print(
            f"limits: {args.tasks} no-op tasks on two nodes with rate_limit={args.rate} and "
            f"concurrency={args.concurrency}: {args.tasks / limited:,.0f} tasks/s against "
            f"{args.tasks / two:,.0f} without ({limited / two:.2f}x the time; ran "
            f"{ran['node-1']} and {ran['node-2']})"
        )
        count = args.binding_tasks
        async with fresh() as url:
            took, ran = await run(
                url, "noop", count, [args.noop_workers] * 2, 0, rate_limit=args.binding_rate
            )
            peak = busiest_second(url)
        print(
            f"binding rate: {count} no-op tasks on two nodes with rate_limit="
            f"{args.binding_rate}: makespan {took:.2f}s, at most {peak} starts in any one "
            f"second (ran {ran['node-1']} and {ran['node-2']})"
        )

        rates = []
        for heartbeat in (None, 5.0, 0.1):
            async with fresh() as url:
                took, _ = await run(url, "noop", args.tasks, [args.noop_workers] * 2, 0, heartbeat)
            rates.append(
                f"{'off' if heartbeat is None else f'{heartbeat:g}s'} {args.tasks / took:,.0f}"
            )
        print(f"heartbeat: two nodes drain {args.tasks} no-op tasks/s with it " + ", ".join(rates))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--noop-workers", type=int, default=8)
    parser.add_argument("--limits", action="store_true", help="also measure type limits")
    parser.add_argument("--rate", default="100000/s", help="a rate limit that does not bind")
    parser.add_argument("--concurrency", type=int, default=1000, help="one that does not bind")
    parser.add_argument("--binding-rate", default="500/s", help="a rate limit that binds")
    parser.add_argument("--binding-tasks", type=int, default=2500)
    add_pg_argument(parser)
    trio.run(main, parser.parse_args())
