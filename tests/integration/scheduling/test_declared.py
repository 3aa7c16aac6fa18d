"""Schedules declared in code: created on start, updated by name on later starts."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from tests.integration.scheduling.kit import Ticks, WallClock, fired

from trellis_actors import App, open_runtime
from trellis_actors.stores.memory import MemoryStore


def periodic(**spec: Any) -> Ticks:
    """A ``Ticks`` app whose ``tick`` type is also declared as a schedule named ``tick``."""
    ticks = Ticks()
    ticks.app.schedule("tick", "tick", **spec)
    return ticks


class TestDeclaredOnStart:
    async def test_created_on_start(self, autojump_clock: trio.testing.MockClock) -> None:
        """``@app.periodic`` and ``app.schedule`` schedules exist once the runtime is up,
        and fire."""
        app = App()
        runs: list[float] = []

        @app.periodic(every="30s", payload={"n": 1})
        async def refresh(ctx: Any, payload: Any) -> None:
            runs.append(trio.current_time())

        app.schedule("nightly", "echo", cron="0 2 * * *", timezone="Europe/Paris")
        async with open_runtime(app, workers=1) as rt:
            start = trio.current_time()
            schedules = {s.name: s for s in await rt.list_schedules()}
            assert sorted(schedules) == ["nightly", "refresh"]
            assert schedules["refresh"].every == 30
            assert schedules["refresh"].payload == {"n": 1}
            assert schedules["nightly"].spec == "cron 0 2 * * * (Europe/Paris)"
            await trio.sleep(61)
            assert [t - start for t in runs] == [30, 60]

    async def test_same_spec_is_left_alone(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """Restarting with the same declaration keeps the schedule, its anchor and its
        slots: no duplicate, no re-anchoring, no extra fire."""
        store = MemoryStore()
        ticks = periodic(every=30)
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (before,) = await rt.list_schedules()
            await trio.sleep_until(start + 40)
        await trio.sleep_until(start + 50)
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (after,) = await rt.list_schedules()
            assert (after.id, after.anchor, after.updated_at) == (
                before.id,
                before.anchor,
                before.updated_at,
            )
            await trio.sleep_until(start + 100)
            assert len(await fired(rt, before.id)) == 3
        assert ticks.since(start) == [30, 60, 90]

    async def test_changed_spec_updates_in_place(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A changed declaration updates the stored schedule of that name (same id) and
        re-anchors it at the start that saw the change."""
        store = MemoryStore()
        async with open_runtime(periodic(every=30).app, store=store, workers=1) as rt:
            (before,) = await rt.list_schedules()
        await trio.sleep(1000)
        ticks = periodic(every="5m", misfire="run_once", payload={"v": 2})
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (after,) = await rt.list_schedules()
            assert after.id == before.id
            assert (after.every, after.misfire, after.payload) == (300, "run_once", {"v": 2})
            assert after.anchor == before.anchor + 1000
            assert after.next_run_at == after.anchor + 300

    async def test_changed_kind(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A declaration that moves from an interval to cron drops the interval."""
        store = MemoryStore()
        async with open_runtime(periodic(every=30).app, store=store, workers=1):
            pass
        ticks = periodic(cron="0 9 * * *", timezone="America/New_York")
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (after,) = await rt.list_schedules()
            assert (after.every, after.cron, after.timezone) == (
                None,
                "0 9 * * *",
                "America/New_York",
            )
            assert after.next_run_at == wall_clock.base + 14 * 3600  # 2025-01-15 09:00 EST

    async def test_operator_pause_survives_restart(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A declared schedule paused by an operator stays paused after a restart, even
        though the code does not say ``paused``."""
        store = MemoryStore()
        ticks = periodic(every=30)
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (schedule,) = await rt.list_schedules()
            await rt.pause_schedule(schedule.id)
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            (after,) = await rt.list_schedules()
            assert after.paused
            await trio.sleep_until(start + 100)
        assert ticks.times == []

    async def test_pause_survives_a_changed_spec(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A restart that changes the spec of a paused schedule leaves it paused."""
        store = MemoryStore()
        async with open_runtime(periodic(every=30).app, store=store, workers=1) as rt:
            (schedule,) = await rt.list_schedules()
            await rt.pause_schedule(schedule.id)
        async with open_runtime(periodic(every=60).app, store=store, workers=1) as rt:
            (after,) = await rt.list_schedules()
            assert (after.every, after.paused) == (60, True)


class TestNoLongerDeclared:
    async def test_kept_when_the_declaration_goes(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """Dropping a declaration from the code does not delete the stored schedule; it
        keeps firing while its task type exists."""
        store = MemoryStore()
        async with open_runtime(periodic(every=30).app, store=store, workers=1):
            pass
        ticks = Ticks()  # still has the "tick" type, no longer declares the schedule
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            assert [s.name for s in await rt.list_schedules()] == ["tick"]
            await trio.sleep_until(start + 31)
        assert ticks.since(start) == [30]

    async def test_task_type_gone(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """A stored schedule whose task type is no longer registered drops its slots and
        does not stop the scheduler: the other schedules keep firing."""
        store = MemoryStore()
        old = Ticks()

        @old.app.periodic(every=20)
        async def retired(ctx: Any, payload: Any) -> None: ...

        async with open_runtime(old.app, store=store, workers=1) as rt:
            await rt.add_schedule("tick", "tick", every=30)
        ticks = Ticks()
        start = trio.current_time()
        async with open_runtime(ticks.app, store=store, workers=1) as rt:
            await trio.sleep_until(start + 95)
            schedules = {s.name: s for s in await rt.list_schedules()}
            assert await fired(rt, schedules["retired"].id) == []
            gone = schedules["retired"]
            assert gone.next_run_at == gone.anchor + 100  # moved on, slot by slot
            assert gone.last_run_at is None
        assert ticks.since(start) == [30, 60, 90]
