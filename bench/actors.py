"""Throughput of the actor kernel against raw trio, measured in one run.

Prints raw one-hop memory-channel throughput and a raw request/reply rate, then ``Ref.tell``
into an actor under a supervisor and ``Ref.ask`` round trips, each as a percentage of its raw
counterpart, with PASS/FAIL against the targets (the exit status is 1 if one is missed).
Every figure is the best of three runs.

    python bench/actors.py [--messages 200000] [--requests 50000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import trio
from _raw import one_hop_throughput

from trellis_actors.actors import Actor, ChildSpec, Request, Supervisor

REPEATS = 3
MAILBOX = 128  # the default mailbox size, and the raw channel's buffer
TELL_TARGET = 0.60
ASK_TARGET = 0.50


class _Slot:
    """The raw stand-in for a request: a value and an event to answer on."""

    __slots__ = ("answer", "done", "value")

    def __init__(self, value: int) -> None:
        self.value = value
        self.answer = 0
        self.done = trio.Event()


async def raw_request_reply(requests: int) -> float:
    """Round trips per second: send over a channel, wait on a per-request event."""
    send, receive = trio.open_memory_channel[_Slot](MAILBOX)

    async def serve() -> None:
        async for slot in receive:
            slot.answer = slot.value
            slot.done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        started = time.perf_counter()
        for i in range(requests):
            slot = _Slot(i)
            await send.send(slot)
            await slot.done.wait()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return requests / elapsed


class Sink(Actor[int]):
    """Counts messages; sets ``done`` at the last one."""

    kind = "sink"

    def __init__(self, expected: int, done: trio.Event) -> None:
        super().__init__()
        self.expected = expected
        self.done = done
        self.count = 0

    async def handle(self, msg: int) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


@dataclass(frozen=True, slots=True)
class Echo(Request[int]):
    value: int


class Echoer(Actor[Echo]):
    """Answers every request with its own value."""

    kind = "echo"

    async def handle(self, msg: Echo) -> None:
        msg.reply.send(msg.value)


async def tell_throughput(messages: int) -> float:
    """Messages per second told into an actor running under a supervisor."""
    done = trio.Event()
    spec = ChildSpec("sink", lambda: Sink(messages, done), mailbox_size=MAILBOX)
    supervisor = Supervisor([spec])
    ref = spec.ref

    async def produce() -> None:
        for i in range(messages):
            await ref.tell(i)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        started = time.perf_counter()
        nursery.start_soon(produce)
        await done.wait()
        elapsed = time.perf_counter() - started
        supervisor.request_stop()
    return messages / elapsed


async def ask_rate(requests: int) -> float:
    """Round trips per second with ``Ref.ask`` to an actor running under a supervisor."""
    spec = ChildSpec("echo", Echoer, mailbox_size=MAILBOX)
    supervisor = Supervisor([spec])
    ref = spec.ref
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        started = time.perf_counter()
        for i in range(requests):
            await ref.ask(Echo(i))
        elapsed = time.perf_counter() - started
        supervisor.request_stop()
    return requests / elapsed


def best_of(repeats: int, measures: dict[str, Callable[[], Awaitable[float]]]) -> dict[str, float]:
    """The best rate of each measure over ``repeats`` rounds.

    Rounds interleave the measures, so a noisy machine's load falls on raw and kernel alike.
    """
    rates: dict[str, float] = dict.fromkeys(measures, 0.0)
    for _ in range(repeats):
        for name, measure in measures.items():
            rates[name] = max(rates[name], trio.run(measure))
    return rates


def verdict(rate: float, raw: float, target: float) -> tuple[str, bool]:
    share = rate / raw
    passed = share >= target
    return f"{share:6.1%} of raw (target >= {target:.0%})  {'PASS' if passed else 'FAIL'}", passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()

    rates = best_of(
        REPEATS,
        {
            "raw_hop": partial(one_hop_throughput, args.messages, MAILBOX),
            "tell": partial(tell_throughput, args.messages),
            "raw_rr": partial(raw_request_reply, args.requests),
            "ask": partial(ask_rate, args.requests),
        },
    )
    raw_hop, tell, raw_rr, ask = rates["raw_hop"], rates["tell"], rates["raw_rr"], rates["ask"]

    tell_verdict, tell_passed = verdict(tell, raw_hop, TELL_TARGET)
    ask_verdict, ask_passed = verdict(ask, raw_rr, ASK_TARGET)

    print(f"best of {REPEATS}; {args.messages:,} messages, {args.requests:,} requests")
    print(f"raw one-hop memory channel   {raw_hop:>10,.0f} msgs/s")
    print(f"Ref.tell (supervised actor)  {tell:>10,.0f} msgs/s  {tell_verdict}")
    print(f"raw request/reply            {raw_rr:>10,.0f} req/s")
    print(f"Ref.ask round trip           {ask:>10,.0f} req/s   {ask_verdict}")
    raise SystemExit(0 if tell_passed and ask_passed else 1)


if __name__ == "__main__":
    main()
