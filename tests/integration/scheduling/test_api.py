"""The runtime's schedule API: add, update, pause, delete, list, get and run now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.scheduling.kit import WallClock, fired

from trellis_actors import Runtime, UnknownTaskType, ValidationError, open_runtime
from trellis_actors.errors import ScheduleNotFound
from trellis_actors.scheduling.model import Misfire


@pytest.fixture
async def rt(autojump_clock: trio.testing.MockClock) -> AsyncIterator[Runtime]:
    """A runtime on the in-memory store; its tests ask for ``autojump_clock`` too, which
    is what puts them in virtual time."""
    async with open_runtime(workers=1) as runtime:
        yield runtime


class TestAddSchedule:
    async def test_returns_the_stored_schedule(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """``add_schedule`` returns what it stored, with its first slot planned."""
        schedule = await rt.add_schedule(
            "tick", "echo", {"a": 1}, every="2m", queue="low", priority=3, misfire="run_once"
        )
        assert schedule.id
        assert (schedule.name, schedule.task_type, schedule.payload) == ("tick", "echo", {"a": 1})
        assert (schedule.every, schedule.queue, schedule.priority) == (120, "low", 3)
        assert schedule.misfire is Misfire.RUN_ONCE
        assert not schedule.paused
        assert schedule.anchor == schedule.created_at == schedule.updated_at
        assert schedule.next_run_at == schedule.anchor + 120
        assert schedule.last_run_at is None
        assert await rt.get_schedule(schedule.id) == schedule

    @pytest.mark.parametrize(
        ("spec", "field", "match"),
        [
            ({"every": 30, "cron": "* * * * *"}, "cron", "give exactly one of every, cron or at"),
            ({}, "every", "give exactly one of every, cron or at"),
            ({"cron": "0 25 * * *"}, "cron", r"cron expression '0 25 \* \* \*' is not valid"),
            ({"cron": "0 9 * * * *"}, "cron", "cron must have five fields"),
            ({"cron": "0 9 * * *", "timezone": "Nowhere/City"}, "timezone", "unknown timezone"),
            ({"every": "0.5s"}, "every", "every must be between 1 second and 10 years"),
            ({"every": "fortnightly"}, "every", "every must be seconds or a duration"),
            ({"at": "not a date"}, "at", "at must be an ISO 8601 date-time"),
            ({"every": 30, "misfire": "always"}, "misfire", "misfire must be"),
            ({"every": 30, "colour": "red"}, "colour", "unknown field 'colour'"),
        ],
    )
    async def test_validation_names_the_field(
        self,
        autojump_clock: trio.testing.MockClock,
        rt: Runtime,
        spec: dict[str, Any],
        field: str,
        match: str,
    ) -> None:
        """A bad definition raises ValidationError naming the field, and stores nothing."""
        with pytest.raises(ValidationError, match=match) as info:
            await rt.add_schedule("tick", "echo", **spec)
        assert info.value.field == field
        assert await rt.list_schedules() == []

    async def test_bad_name(self, autojump_clock: trio.testing.MockClock, rt: Runtime) -> None:
        """A name with spaces is refused, naming ``name``."""
        with pytest.raises(ValidationError) as info:
            await rt.add_schedule("my schedule", "echo", every=30)
        assert info.value.field == "name"

    async def test_unknown_task_type(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """A schedule for a type the app does not know is refused, naming the known ones."""
        with pytest.raises(
            UnknownTaskType, match=r"^unknown task type 'nope'; known types: .*\becho\b"
        ):
            await rt.add_schedule("tick", "nope", every=30)
        assert await rt.list_schedules() == []

    async def test_duplicate_name(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Names are unique: a second schedule of the same name names ``name``."""
        first = await rt.add_schedule("tick", "echo", every=30)
        with pytest.raises(
            ValidationError, match=r"^a schedule named 'tick' already exists$"
        ) as info:
            await rt.add_schedule("tick", "echo", cron="* * * * *")
        assert info.value.field == "name"
        assert await rt.list_schedules() == [first]


class TestUpdateSchedule:
    async def test_new_spec_reanchors(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Changing the interval re-anchors at the moment of the change."""
        schedule = await rt.add_schedule("tick", "echo", every=30)
        await trio.sleep(45)
        updated = await rt.update_schedule(schedule.id, every=100)
        assert updated.every == 100
        assert updated.anchor == schedule.anchor + 45
        assert updated.next_run_at == updated.anchor + 100
        assert updated.updated_at == updated.anchor
        await trio.sleep(100 + 5)
        slots = [t.created_at - schedule.anchor for t in await fired(rt, schedule.id)]
        assert slots == pytest.approx([30, 145], abs=1e-6)

    async def test_other_fields_keep_the_slots(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Changing payload, queue, priority or misfire leaves anchor and next run alone."""
        schedule = await rt.add_schedule("tick", "echo", every=30)
        await trio.sleep(10)
        updated = await rt.update_schedule(
            schedule.id, payload=[1, 2], queue="side", priority=-1, misfire="run_once"
        )
        assert (updated.payload, updated.queue, updated.priority) == ([1, 2], "side", -1)
        assert updated.misfire is Misfire.RUN_ONCE
        assert (updated.anchor, updated.next_run_at) == (schedule.anchor, schedule.next_run_at)

    async def test_new_kind_drops_the_old(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Giving ``cron`` to an interval schedule makes it a cron schedule."""
        schedule = await rt.add_schedule("tick", "echo", every=30)
        updated = await rt.update_schedule(schedule.id, cron="*/5 * * * *", timezone="UTC")
        assert (updated.every, updated.cron, updated.timezone) == (None, "*/5 * * * *", "UTC")
        assert updated.next_run_at is not None
        assert updated.next_run_at % 300 == 0
        back = await rt.update_schedule(schedule.id, every=60)
        assert (back.every, back.cron, back.timezone) == (60, None, None)

    async def test_timezone_alone(
        self, autojump_clock: trio.testing.MockClock, wall_clock: WallClock
    ) -> None:
        """The zone of a cron schedule can change on its own; the slots follow it."""
        async with open_runtime(workers=1) as rt:
            schedule = await rt.add_schedule("daily", "echo", cron="0 9 * * *")
            assert schedule.next_run_at == wall_clock.base + 9 * 3600  # 2025-01-15 09:00 UTC
            updated = await rt.update_schedule(schedule.id, timezone="America/New_York")
            assert (updated.cron, updated.timezone) == ("0 9 * * *", "America/New_York")
            assert updated.next_run_at == wall_clock.base + 14 * 3600  # 09:00 EST
            kept = await rt.update_schedule(schedule.id, cron="30 9 * * *")
            assert (kept.cron, kept.timezone) == ("30 9 * * *", "America/New_York")

    async def test_bad_change_changes_nothing(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """An invalid change raises ValidationError naming the field; the schedule stays."""
        schedule = await rt.add_schedule("tick", "echo", every=30)
        with pytest.raises(ValidationError) as info:
            await rt.update_schedule(schedule.id, every="0s")
        assert info.value.field == "every"
        with pytest.raises(ValidationError, match="unknown field 'anchor'") as info:
            await rt.update_schedule(schedule.id, anchor=0)
        assert info.value.field == "anchor"
        with pytest.raises(ValidationError) as info:
            await rt.update_schedule(schedule.id, timezone="UTC")
        assert info.value.field == "timezone"
        with pytest.raises(UnknownTaskType):
            await rt.update_schedule(schedule.id, task_type="nope")
        assert await rt.get_schedule(schedule.id) == schedule

    async def test_rename_onto_another_name(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Renaming onto a taken name is refused, naming ``name``."""
        await rt.add_schedule("a", "echo", every=30)
        b = await rt.add_schedule("b", "echo", every=30)
        with pytest.raises(ValidationError, match="already exists") as info:
            await rt.update_schedule(b.id, name="a")
        assert info.value.field == "name"
        assert (await rt.update_schedule(b.id, name="c")).name == "c"

    async def test_unknown_schedule(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """Updating, pausing or resuming an unknown id raises ScheduleNotFound."""
        for call in (rt.pause_schedule, rt.resume_schedule):
            with pytest.raises(ScheduleNotFound, match=r"^no schedule with id 'nope'$"):
                await call("nope")
        with pytest.raises(ScheduleNotFound):
            await rt.update_schedule("nope", every=30)


class TestDeleteSchedule:
    async def test_deleted_schedules_stop(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """A deleted schedule is gone and fires no more; its past tasks stay."""
        schedule = await rt.add_schedule("tick", "echo", every=30)
        await trio.sleep(31)
        await rt.delete_schedule(schedule.id)
        with pytest.raises(ScheduleNotFound):
            await rt.get_schedule(schedule.id)
        assert await rt.list_schedules() == []
        await trio.sleep(100)
        assert len(await fired(rt, schedule.id)) == 1

    async def test_unknown(self, autojump_clock: trio.testing.MockClock, rt: Runtime) -> None:
        """Deleting an unknown id (or one already deleted) raises ScheduleNotFound."""
        with pytest.raises(ScheduleNotFound, match=r"^no schedule with id 'nope'$"):
            await rt.delete_schedule("nope")
        schedule = await rt.add_schedule("tick", "echo", every=30)
        await rt.delete_schedule(schedule.id)
        with pytest.raises(ScheduleNotFound):
            await rt.delete_schedule(schedule.id)


class TestListAndGet:
    async def test_list_by_name(self, autojump_clock: trio.testing.MockClock, rt: Runtime) -> None:
        """``list_schedules`` returns every schedule, by name."""
        for name in ("b", "c", "a"):
            await rt.add_schedule(name, "echo", every=60)
        assert [s.name for s in await rt.list_schedules()] == ["a", "b", "c"]

    async def test_get(self, autojump_clock: trio.testing.MockClock, rt: Runtime) -> None:
        """``get_schedule`` reads one by id; an unknown id raises ScheduleNotFound."""
        schedule = await rt.add_schedule("tick", "echo", at="2030-01-01T00:00:00Z")
        assert (await rt.get_schedule(schedule.id)).spec == "at 2030-01-01T00:00:00Z"
        with pytest.raises(ScheduleNotFound, match=r"^no schedule with id 'nope'$"):
            await rt.get_schedule("nope")


class TestRunNow:
    async def test_creates_a_task_outside_the_slots(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """``run_schedule`` creates a task now, tagged with the schedule and with no slot
        key, so each call makes one; the schedule's slots are untouched."""
        schedule = await rt.add_schedule("tick", "echo", {"x": 1}, every=3600)
        first = await rt.run_schedule(schedule.id)
        second = await rt.run_schedule(schedule.id)
        assert first.id != second.id
        for task in (first, second):
            assert (task.schedule_id, task.idempotency_key) == (schedule.id, None)
            assert (task.type, task.payload) == ("echo", {"x": 1})
        assert (await rt.wait(first.id)).status == "completed"
        after = await rt.get_schedule(schedule.id)
        assert (after.next_run_at, after.last_run_at) == (schedule.next_run_at, None)
        assert len(await fired(rt, schedule.id)) == 2

    async def test_paused_schedule(
        self, autojump_clock: trio.testing.MockClock, rt: Runtime
    ) -> None:
        """A paused schedule can still be run by hand."""
        schedule = await rt.add_schedule("tick", "echo", every=30, paused=True)
        task = await rt.run_schedule(schedule.id)
        assert task.schedule_id == schedule.id

    async def test_unknown(self, autojump_clock: trio.testing.MockClock, rt: Runtime) -> None:
        """Running an unknown id raises ScheduleNotFound."""
        with pytest.raises(ScheduleNotFound, match=r"^no schedule with id 'nope'$"):
            await rt.run_schedule("nope")
