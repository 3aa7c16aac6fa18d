"""Raw trio limits measured in the same run as each benchmark (these machines are noisy)."""

from __future__ import annotations

import time

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
