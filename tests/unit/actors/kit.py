"""A probe actor and small helpers shared by the actor-kernel tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, assert_never

import trio
import trio.testing

from trellis_actors import Backoff
from trellis_actors.actors import Actor, ChildSpec, Ref, Request, Supervisor


@dataclass(frozen=True)
class Crash:
    """Raise ``RuntimeError(text)`` from ``handle``."""

    text: str = "boom"


@dataclass(frozen=True)
class Exit:
    """Finish cleanly: the loop ends after this message."""


@dataclass(frozen=True)
class Add:
    n: int = 1


@dataclass(frozen=True)
class Get(Request[int]):
    """Reply: the running total of this incarnation."""


@dataclass(frozen=True)
class Explode(Request[int]):
    """Raise ``RuntimeError(text)`` instead of answering."""

    text: str = "boom"


@dataclass(frozen=True)
class Ignore(Request[int]):
    """Never answered."""


@dataclass(frozen=True)
class Stall(Request[int]):
    """Never answered, and busy forever: only cancellation ends it."""


@dataclass(frozen=True)
class Hold:
    """Stay busy until ``release`` is set, deaf to stop requests meanwhile."""

    release: trio.Event


@dataclass(frozen=True)
class Beat:
    """Signal liveness ``times`` times, ``every`` seconds apart, then hang without a word."""

    times: int
    every: float


ProbeMsg = Crash | Exit | Add | Get | Explode | Ignore | Stall | Hold | Beat

#: Restart delays of 1, 2, 4, 8, 8, … seconds: exact, so tests can pin them.
STEADY = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=0.0)

#: Virtual seconds after which a wait is taken to be stuck, so a broken test fails fast.
STUCK = 3600.0


def guard() -> trio.CancelScope:
    """Fail a wait that never ends, when time is virtual (a no-op on the real clock)."""
    if isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        return trio.fail_after(STUCK)
    return trio.CancelScope()


class Journal:
    """What probes did, as ``(time, event, name)`` entries, with a way to wait for one."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, str, str]] = []
        self._changed = trio.Event()

    def record(self, event: str, name: str) -> None:
        self.entries.append((trio.current_time(), event, name))
        self._changed.set()
        self._changed = trio.Event()

    def times(self, event: str, name: str) -> list[float]:
        return [at for at, ev, who in self.entries if ev == event and who == name]

    def count(self, event: str, name: str) -> int:
        return len(self.times(event, name))

    def order(self, event: str) -> list[str]:
        """Names in the order they recorded ``event``."""
        return [who for _, ev, who in self.entries if ev == event]

    async def wait_for(self, event: str, name: str, count: int = 1) -> float:
        """Wait until ``name`` recorded ``event`` ``count`` times; return the last time."""
        with guard():
            while self.count(event, name) < count:
                await self._changed.wait()
        return self.times(event, name)[count - 1]


class Probe(Actor[ProbeMsg]):
    """A test actor: records its starts and stops, and does what its messages say."""

    kind = "probe"

    def __init__(self, journal: Journal, *, fail_on_start: bool = False) -> None:
        super().__init__()
        self.journal = journal
        self.fail_on_start = fail_on_start
        self.total = 0

    async def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.record("start", self.name)

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await super().run(task_status=task_status)
        finally:
            self.journal.record("stop", self.name)

    async def handle(self, msg: ProbeMsg) -> None:
        match msg:
            case Crash(text) | Explode(text):
                raise RuntimeError(text)
            case Exit():
                self.request_stop()
            case Add(n):
                self.total += n
            case Get():
                msg.reply.send(self.total)
            case Ignore():
                pass
            case Stall():
                await trio.sleep_forever()
            case Hold(release):
                await release.wait()
            case Beat(times, every):
                for _ in range(times):
                    await trio.sleep(every)
                    self.alive()
                await trio.sleep_forever()
            case _:
                assert_never(msg)


def probe(journal: Journal, name: str, **options: Any) -> ChildSpec:
    """A child spec for a probe named ``name``; ``options`` go to :class:`ChildSpec`."""
    fail_on_start = options.pop("fail_on_start", False)
    return ChildSpec(name, lambda: Probe(journal, fail_on_start=fail_on_start), **options)


def named(supervisor: Supervisor, name: str) -> Supervisor:
    """Give a top-level supervisor a name of its own (it is ``supervisor`` otherwise)."""
    supervisor.bind(ChildSpec(name, lambda: supervisor))
    return supervisor


@asynccontextmanager
async def running(supervisor: Supervisor) -> AsyncIterator[Ref[Any]]:
    """Run ``supervisor`` for the ``async with`` body, then stop it and wait until it has."""
    with guard():
        async with trio.open_nursery() as nursery:
            ref = await nursery.start(supervisor.run)
            try:
                yield ref
            finally:
                supervisor.request_stop()


async def run_to_end(supervisor: Supervisor) -> None:
    """Run ``supervisor`` until it ends on its own (by giving up, in these tests)."""
    with guard():
        await supervisor.run()
