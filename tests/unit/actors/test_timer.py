"""Kernel timers and the message loop helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import assert_never

import pytest
import trio
import trio.testing

from trellis_actors.actors import Actor, Timer


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class Arm:
    seconds: float


class Ticker(Actor[Tick | Arm]):
    """Records the trio time of every tick; a one-off timer is armed by ``Arm``."""

    kind = "ticker"

    def __init__(self, every: float | None) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.stopped_at: float | None = None
        self.periodic = self.timer(Tick, every=every)

    async def handle(self, msg: Tick | Arm) -> None:
        match msg:
            case Tick():
                self.ticks.append(trio.current_time())
            case Arm(seconds):
                self.periodic.after(seconds)
            case _:
                assert_never(msg)

    async def on_stop(self) -> None:
        self.stopped_at = trio.current_time()


class TestTimer:
    async def test_periodic(self, autojump_clock: trio.testing.MockClock) -> None:
        """A periodic timer sends its message every period, as a message in the mailbox."""
        actor = Ticker(every=2.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            start = trio.current_time()
            await trio.sleep(7)
            actor.request_stop()

        assert [t - start for t in actor.ticks] == [2.0, 4.0, 6.0]
        assert actor.stopped_at is not None

    async def test_one_off_is_armed_by_the_actor(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Without a period, the timer fires once each time it is armed, and not before."""
        actor = Ticker(every=None)
        async with trio.open_nursery() as nursery:
            ref = await nursery.start(actor.run)
            start = trio.current_time()
            await trio.sleep(10)
            assert actor.ticks == []
            await ref.tell(Arm(3))
            await trio.sleep(10)
            actor.request_stop()

        assert [t - start for t in actor.ticks] == [13.0]

    async def test_rearming_later_postpones(self, autojump_clock: trio.testing.MockClock) -> None:
        """Moving the deadline later while the timer sleeps postpones the message."""
        sent: list[float] = []
        timer: Timer[str] = Timer(lambda _: sent.append(trio.current_time()), lambda: "tick")
        async with trio.open_nursery() as nursery:
            await nursery.start(timer.run)
            timer.at(trio.current_time() + 1)
            await trio.sleep(0.5)
            timer.at(trio.current_time() + 2)  # now due at 2.5
            timer.sooner(trio.current_time() + 5)  # later than due: no change
            await trio.sleep(5)
            assert timer.deadline == math.inf
            nursery.cancel_scope.cancel()

        assert sent == [2.5]

    def test_rejects_bad_period(self) -> None:
        """A period must be positive."""
        with pytest.raises(ValueError, match="period must be > 0"):
            Timer(lambda _: None, lambda: "tick", every=0)


class TestMessages:
    async def test_batches_take_what_waits(self) -> None:
        """``batches`` yields every waiting message at once, up to its limit."""
        seen: list[list[int]] = []

        class Batcher(Actor[int]):
            async def run(
                self, *, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED
            ) -> None:
                task_status.started(self.ref)
                async for batch in self.batches(3):
                    seen.append(batch)

        actor = Batcher()
        for n in range(5):
            actor.ref.tell_nowait(n)
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.testing.wait_all_tasks_blocked()
            actor.request_stop()

        assert seen == [[0, 1, 2], [3, 4]]
