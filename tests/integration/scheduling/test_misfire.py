"""Pauses, outages and restarts: which slots fire, and that none fires twice."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio
import trio.testing
from tests.integration.scheduling.kit import Ticks, WallClock, fired

from trellis_actors import open_runtime
from trellis_actors.scheduling.model import Schedule, slot_key
from trellis_actors.stores.memory import MemoryStore


class TestPause:
    async def test_no_fires_while_paused(self, autojump_clock: trio.testing.MockClock) -> None:
        """A paused schedule fires nothing; resuming does not fire what it slept through
        (even under ``run_once``: a pause is not an outage), and it carries on at the next
        slot of its original grid."""
        ticks = Ticks()
        async with open_runtime(ticks.app, workers=1) as rt:
            start = trio.current_time()
            schedule = await rt.add_schedule("tick", "tick", every=30, misfire="run_once")
            await trio.sleep_until(start + 45)
            assert ticks.since(start) == [30]

            paused = await rt.pause_schedule(schedule.id)
            assert paused.paused
            assert (await rt.get_schedule(schedule.id)).paused
            await trio.sleep_until(start + 245)  # slots 60 .. 240 pass while paused
            assert ticks.since(start) == [30]

            resumed = await rt.resume_schedule(schedule.id)
            assert not resumed.paused
            assert resumed.anchor == schedule.anchor
            assert resumed.next_run_at == schedule.anchor + 270
            await trio.sleep_until(start + 315)
            assert ticks.since(start) == [30, 270, 300]
            keys = [t.idempotency_key for t in await fired(rt, schedule.id)]
            assert keys == [slot_key(schedule.id, schedule.anchor + s) for s in (30, 270, 300)]

    async def test_created_paused(self, autojump_clock: trio.testing.MockClock) -> None:
        """A schedule created paused fires only after it is resumed."""
        ticks = Ticks()
        async with open_runtime(ticks.app, workers=1) as rt:
            start = trio.current_time()
            schedule = await rt.add_schedule("tick", "tick", every=30, paused=True)
            await trio.sleep_until(start + 100)
            assert ticks.times == []
            await rt.resume_schedule(schedule.id)
            await trio.sleep_until(start + 130)
            assert ticks.since(start) == [120]

    async def test_pause_twice(self, autojump_clock: trio.testing.MockClock) -> None:
        """Pausing a paused schedule changes nothing but its ``updated_at``."""
        async with open_runtime(workers=1) as rt:
            schedule = await rt.add_schedule("tick", "echo", every=30, paused=True)
            await trio.sleep(10)
            again = await rt.pause_schedule(schedule.id)
            assert again.updated_at == schedule.updated_at + 10
            assert replace(again, updated_at=schedule.updated_at) == schedule


async def _outage(misfire: str) -> tuple[list[float], list[str | None], Schedule]:
    """Run an ``every 60s`` schedule for one fire, stop for 224 s (slots 120, 180 and 240
    pass; the runtime comes back 45 s after the last), then run again until 330 s.

    Returns the run times relative to the start, the fires' slot keys and the schedule."""
    store = MemoryStore()
    ticks = Ticks()
    start = trio.current_time()
    async with open_runtime(ticks.app, store=store, workers=1) as rt:
        schedule = await rt.add_schedule("tick", "tick", every=60, misfire=misfire)
        await trio.sleep_until(start + 61)
    await trio.sleep_until(start + 285)  # the outage: no runtime at all
    assert ticks.since(start) == [60]
    async with open_runtime(ticks.app, store=store, workers=1) as rt:
        await trio.sleep_until(start + 330)
        tasks = await fired(rt, schedule.id)
        after = await rt.get_schedule(schedule.id)
    assert after.next_run_at == schedule.anchor + 360
    return ticks.since(start), [t.idempotency_key for t in tasks], schedule


class TestOutage:
    async def test_skip(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """``skip``: none of the slots missed during the outage fires; the schedule carries
        on at its next slot."""
        times, keys, schedule = await _outage("skip")
        assert times == pytest.approx([60, 300], abs=0.5)
        assert keys == [slot_key(schedule.id, schedule.anchor + s) for s in (60, 300)]

    async def test_run_once(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """``run_once``: one task for the whole outage (the latest missed slot, fired on
        return), then on with the next slot."""
        times, keys, schedule = await _outage("run_once")
        assert times == pytest.approx([60, 285, 300], abs=0.5)
        assert keys == [slot_key(schedule.id, schedule.anchor + s) for s in (60, 240, 300)]

    async def test_short_outage_within_grace(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """Back within the grace of a slot, even ``skip`` fires that (late) slot."""
        store = MemoryStore()
        ticks = Ticks()
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            schedule = await rt.add_schedule("tick", "tick", every=60)
        await trio.sleep_until(start + 80)
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            await trio.sleep_until(start + 90)
            (task,) = await fired(rt, schedule.id)
        assert task.idempotency_key == slot_key(schedule.id, schedule.anchor + 60)
        assert ticks.since(start) == pytest.approx([80], abs=0.5)


class TestRestart:
    async def test_reopen_at_once_fires_nothing_more(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """Closing right after a fire and reopening at the same moment adds no task."""
        store = MemoryStore()
        ticks = Ticks()
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            schedule = await rt.add_schedule("tick", "tick", every=60)
            await trio.sleep_until(start + 60.5)
            assert len(await fired(rt, schedule.id)) == 1
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            await trio.sleep(1)
            assert len(await fired(rt, schedule.id)) == 1
            assert (await rt.get_schedule(schedule.id)).next_run_at == schedule.anchor + 120
        assert ticks.since(start) == [60]

    async def test_crash_between_fire_and_advance(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A node that stopped after firing a slot but before moving ``next_run_at`` on
        leaves the slot due; the next scheduler fires it again and gets the same task."""
        store = MemoryStore()
        ticks = Ticks()
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            schedule = await rt.add_schedule("tick", "tick", every=60)
            await trio.sleep_until(start + 61)
            (first,) = await fired(rt, schedule.id)
        # Put the schedule back as it was before the advance: slot 60 still due.
        await store.save_schedule(replace(schedule, next_run_at=schedule.anchor + 60))

        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            await trio.sleep(1)
            assert [t.id for t in await fired(rt, schedule.id)] == [first.id]
            after = await rt.get_schedule(schedule.id)
            assert (after.next_run_at, after.last_run_at) == (
                schedule.anchor + 120,
                schedule.anchor + 60,
            )
            await trio.sleep_until(start + 121)
            tasks = await fired(rt, schedule.id)
        assert [t.idempotency_key for t in tasks] == [
            slot_key(schedule.id, schedule.anchor + 60),
            slot_key(schedule.id, schedule.anchor + 120),
        ]
        assert ticks.since(start) == pytest.approx([60, 120], abs=0.5)


class TestSeveralSchedulers:
    async def test_two_runtimes_one_store(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """Two runtimes on one store both lead (a memory store always grants it) and both
        fire every slot, yet each slot makes one task and runs once."""
        store = MemoryStore()
        ticks = Ticks()
        start = trio.current_time()
        async with (
            open_runtime(ticks.app, store=store, workers=1) as first,
            open_runtime(ticks.app, store=store, workers=1),
        ):
            schedule = await first.add_schedule("tick", "tick", every=30)
            await trio.sleep_until(start + 165)
            tasks = await fired(first, schedule.id)
        slots = [schedule.anchor + 30 * k for k in range(1, 6)]
        assert [t.idempotency_key for t in tasks] == [slot_key(schedule.id, s) for s in slots]
        assert ticks.since(start) == [30, 60, 90, 120, 150]

    async def test_stale_advance_is_refused(self) -> None:
        """``next_run_at`` moves on by compare-and-set: an advance from a stale reading
        (another scheduler moved it first) changes nothing."""
        store = MemoryStore()
        schedule = Schedule(id="s", name="s", task_type="echo", every=30, next_run_at=30)
        await store.save_schedule(schedule)
        assert await store.advance_schedule("s", 30, 60, 30)
        assert not await store.advance_schedule("s", 30, 60, 30)
        assert not await store.advance_schedule("gone", 30, 60, 30)
        after = await store.get_schedule("s")
        assert after is not None
        assert (after.next_run_at, after.last_run_at) == (60, 30)
