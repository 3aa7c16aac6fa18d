"""Raw trio limits measured in the same run as each benchmark (these machines are noisy)."""

from __future__ import annotations

import time
from typing import Any

import trio


async def one_hop_throughput(messages: int = 200_000, buffer: int = 128) -> float:
    """Messages per second through one trio memory channel, producer to consumer."""
    send, receive = trio.open_memory_channel[int](buffer)

    async def produce() -> None:
        async with send:
            for i in range(messages):
                await send.send(i)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with receive:
            async for _ in receive:
                pass
    return messages / (time.perf_counter() - started)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def noop_throughput(app: Any, *, store: str, tasks: int, workers: int) -> float:
    """Tasks per second: ``tasks`` no-op tasks submitted in batches of 1,000 and run to
    completion by one runtime on ``store`` (``app`` must have a ``noop`` task type)."""
    return await run_through(app, "noop", store=store, tasks=tasks, workers=workers)


async def run_through(app: Any, type: str, *, store: str, tasks: int, workers: int) -> float:
    """Tasks per second: ``tasks`` tasks of ``type`` (payload ``None``) submitted in
    batches of 1,000 and run to completion by one runtime on ``store``; any that ends
    otherwise than completed stops the run with its error."""
    import trellis_actors as ta

    async with ta.open_runtime(app, store=store, workers=workers) as rt, rt.subscribe() as events:
        began = time.perf_counter()
        for start in range(0, tasks, 1000):
            await rt.submit_many([{"type": type}] * min(1000, tasks - start))
        done = 0
        async for batch in events.batches():
            for move in batch:
                task = move.task
                if task.type == type and task.status.terminal:
                    if task.status is not ta.TaskStatus.COMPLETED:
                        raise RuntimeError(f"a {type} task ended {task.status}: {task.error}")
                    done += 1
            if done >= tasks:
                break
        return tasks / (time.perf_counter() - began)
