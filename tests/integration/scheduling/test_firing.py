"""Schedules firing in a runtime on the in-memory store, in virtual time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing
from tests.integration.scheduling.kit import Ticks, WallClock, clock_now, fired, utc

from trellis_actors import open_runtime
from trellis_actors.scheduling.model import slot_key


class TestEvery:
    @pytest.mark.parametrize("count", [1, 5, 12])
    async def test_fires_once_per_interval(
        self, autojump_clock: trio.testing.MockClock, count: int
    ) -> None:
        """``every 30s`` fires exactly N times in N x 30 s, at anchor + k * 30."""
        ticks = Ticks()
        async with open_runtime(ticks.app, workers=2) as rt:
            start = trio.current_time()
            schedule = await rt.add_schedule("tick", "tick", every="30s")
            await trio.sleep_until(start + count * 30 + 15)

            assert ticks.since(start) == [30.0 * k for k in range(1, count + 1)]
            tasks = await fired(rt, schedule.id)
            slots = [schedule.anchor + 30 * k for k in range(1, count + 1)]
            assert [t.idempotency_key for t in tasks] == [slot_key(schedule.id, s) for s in slots]
            assert [t.created_at for t in tasks] == pytest.approx(slots, abs=1e-6)
            assert all(t.status == "completed" and t.type == "tick" for t in tasks)
            after = await rt.get_schedule(schedule.id)
            assert after.next_run_at == schedule.anchor + 30 * (count + 1)
            assert after.last_run_at == slots[-1]

    async def test_first_slot_is_one_interval_after_creation(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A new schedule does not fire on creation; its first slot is anchor + every."""
        ticks = Ticks()
        async with open_runtime(ticks.app, workers=1) as rt:
            schedule = await rt.add_schedule("tick", "tick", every=90)
            assert schedule.anchor == schedule.created_at
            assert schedule.next_run_at == schedule.anchor + 90
            await trio.sleep(89)
            assert ticks.times == []
            await trio.sleep(2)
            assert len(ticks.times) == 1

    async def test_payload_queue_and_priority(self, autojump_clock: trio.testing.MockClock) -> None:
        """Each fire carries the schedule's payload, queue and priority."""
        async with open_runtime(workers=1) as rt:
            schedule = await rt.add_schedule(
                "echo", "echo", {"hello": "world"}, every=10, queue="side", priority=7
            )
            await trio.sleep(11)
            (task,) = await fired(rt, schedule.id)
            assert (task.payload, task.queue, task.priority) == ({"hello": "world"}, "side", 7)


class TestCron:
    async def test_fires_on_each_minute(self, autojump_clock: trio.testing.MockClock) -> None:
        """``* * * * *`` fires on every whole minute of the runtime's clock, once each."""
        async with open_runtime(workers=1) as rt:
            schedule = await rt.add_schedule("minutely", "echo", cron="* * * * *")
            assert schedule.next_run_at is not None
            assert schedule.next_run_at % 60 == 0
            wait = schedule.next_run_at - schedule.created_at
            assert 0 < wait <= 60
            await trio.sleep(wait + 3 * 60 + 30)  # slots at +0, +60, +120, +180

            tasks = await fired(rt, schedule.id)
            slots = [schedule.next_run_at + 60 * k for k in range(4)]
            assert [t.idempotency_key for t in tasks] == [slot_key(schedule.id, s) for s in slots]
            assert [t.created_at for t in tasks] == pytest.approx(slots, abs=1e-3)

    async def test_time_zone(self, autojump_clock: trio.testing.MockClock) -> None:
        """``0 * * * *`` in Asia/Kolkata (UTC+05:30) fires at half past each UTC hour."""
        async with open_runtime(workers=1, poll_interval=60, janitor_interval=600, lease=600) as rt:
            schedule = await rt.add_schedule(
                "kolkata", "echo", cron="0 * * * *", timezone="Asia/Kolkata"
            )
            assert schedule.next_run_at is not None
            assert schedule.next_run_at % 3600 == 1800
            await trio.sleep(schedule.next_run_at - schedule.created_at + 2 * 3600 + 60)

            tasks = await fired(rt, schedule.id)
            assert len(tasks) == 3
            for task in tasks:
                moment = datetime.fromtimestamp(round(task.created_at), UTC)
                assert (moment.minute, moment.second) == (30, 0)
                assert moment.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0

    async def test_daily_in_new_york(self, autojump_clock: trio.testing.MockClock) -> None:
        """``0 9 * * *`` in America/New_York fires at 09:00 there: 13:00 UTC under daylight
        saving time, 14:00 UTC otherwise, once a day."""
        new_york = ZoneInfo("America/New_York")
        async with open_runtime(
            workers=1, poll_interval=600, janitor_interval=3600, lease=3600
        ) as rt:
            schedule = await rt.add_schedule(
                "morning", "echo", cron="0 9 * * *", timezone="America/New_York"
            )
            assert schedule.next_run_at is not None
            await trio.sleep(schedule.next_run_at - schedule.created_at + 86400 + 3600)

            tasks = await fired(rt, schedule.id)
            assert len(tasks) == 2
            for task in tasks:
                there = datetime.fromtimestamp(round(task.created_at), new_york)
                assert (there.hour, there.minute) == (9, 0)
                dst = bool(there.dst())
                assert there.astimezone(UTC).hour == (13 if dst else 14)

    async def test_paris_spring_forward(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """``30 2 * * *`` in Europe/Paris across 2025-03-30, when 02:30 does not exist:
        that day fires once, at 03:00 CEST (01:00 UTC); the days around fire at 02:30."""
        wall_clock.set("2025-03-28T12:00:00")
        paris = ZoneInfo("Europe/Paris")
        async with open_runtime(
            workers=1, poll_interval=600, janitor_interval=3600, lease=3600
        ) as rt:
            schedule = await rt.add_schedule(
                "night", "echo", cron="30 2 * * *", timezone="Europe/Paris"
            )
            await trio.sleep(4 * 86400)  # until 2025-04-01T12:00Z
            tasks = await fired(rt, schedule.id)
        assert [t.created_at for t in tasks] == [
            utc("2025-03-29T01:30"),
            utc("2025-03-30T01:00"),
            utc("2025-03-31T00:30"),
            utc("2025-04-01T00:30"),
        ]
        assert [datetime.fromtimestamp(t.created_at, paris).strftime("%H:%M") for t in tasks] == [
            "02:30",
            "03:00",
            "02:30",
            "02:30",
        ]


class TestOneShot:
    async def test_fires_once_at_its_time(self, autojump_clock: trio.testing.MockClock) -> None:
        """An ``at`` schedule fires once at its time and then has no next run."""
        async with open_runtime(workers=1) as rt:
            at = await clock_now(rt) + 100
            schedule = await rt.add_schedule("once", "echo", at=at)
            assert schedule.next_run_at == at
            await trio.sleep(99)
            assert await fired(rt, schedule.id) == []
            await trio.sleep(200)

            (task,) = await fired(rt, schedule.id)
            assert task.created_at == pytest.approx(at, abs=1e-3)
            after = await rt.get_schedule(schedule.id)
            assert (after.next_run_at, after.last_run_at) == (None, at)

    async def test_in_the_past_fires_at_once(self, autojump_clock: trio.testing.MockClock) -> None:
        """An ``at`` already past (by far more than the grace) fires at once, and once."""
        async with open_runtime(workers=1, poll_interval=60, janitor_interval=600, lease=600) as rt:
            schedule = await rt.add_schedule("late", "echo", at="2020-01-01T00:00:00Z")
            assert schedule.next_run_at == schedule.at
            await trio.sleep(1)
            assert len(await fired(rt, schedule.id)) == 1
            await trio.sleep(3600)
            assert len(await fired(rt, schedule.id)) == 1
