"""Delayed tasks (``delay=``, ``run_at=``) and ``testing.run_until_idle``, in virtual time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import path

from trellis_actors import App, TaskContext, TaskStatus, open_runtime, testing

S = TaskStatus


def recording_app() -> tuple[App, dict[Any, float]]:
    """An app whose ``note`` type records, per payload, the trio time it started."""
    app = App()
    started: dict[Any, float] = {}

    @app.task(name="note")
    async def note(ctx: TaskContext, payload: Any) -> None:
        started[payload] = trio.current_time()

    return app, started


class TestDelay:
    async def test_delayed_task_waits_pending_until_due(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A task with delay= stays pending, then starts at its time, not before."""
        app, started = recording_app()
        async with open_runtime(app, workers=2) as rt:
            t0 = trio.current_time()
            task = await rt.submit("note", "later", delay=90)
            now = await rt.submit("note", "now")
            assert task.status is S.PENDING and task.run_at == pytest.approx(task.created_at + 90)
            await rt.wait(now.id)
            assert (await rt.get(task.id)).status is S.PENDING
            done = await rt.wait(task.id)
            events = await rt.events(task.id)
        assert started["later"] - t0 == pytest.approx(90, abs=1e-6)
        assert started["now"] == t0
        assert done.status is S.COMPLETED
        assert path(events) == ["pending", "queued", "running", "completed"]
        assert events[1].at >= task.run_at

    async def test_delays_run_in_due_order(self, autojump_clock: trio.testing.MockClock) -> None:
        """Tasks submitted with different delays start in the order they fall due."""
        app, started = recording_app()
        delays = [50, 10, 30, 20, 40]
        async with open_runtime(app, workers=1) as rt:
            t0 = trio.current_time()
            for delay in delays:
                await rt.submit("note", delay, delay=delay)
            await testing.run_until_idle(rt)
        assert {k: v - t0 for k, v in started.items()} == pytest.approx({d: d for d in delays})

    async def test_zero_delay_is_due_at_once(self, autojump_clock: trio.testing.MockClock) -> None:
        """delay=0 means now: the task is queued straight away."""
        async with open_runtime(App(), workers=0) as rt:
            assert (await rt.submit("echo", 1, delay=0)).status is S.QUEUED


class TestRunAt:
    async def test_run_at_as_epoch_seconds(self, autojump_clock: trio.testing.MockClock) -> None:
        """run_at= (seconds since the epoch) starts the task at that moment."""
        app, started = recording_app()
        async with open_runtime(app, workers=1) as rt:
            t0 = trio.current_time()
            anchor = await rt.submit("note", "anchor")  # created at t0, on the runtime's clock
            task = await rt.submit("note", "at", run_at=anchor.created_at + 42.5)
            assert task.status is S.PENDING
            await rt.wait(task.id)
        assert started["at"] - t0 == pytest.approx(42.5, abs=1e-3)

    async def test_run_at_as_iso_text(self, autojump_clock: trio.testing.MockClock) -> None:
        """run_at= also takes ISO 8601 text; naive times are UTC."""
        app, started = recording_app()
        async with open_runtime(app, workers=1) as rt:
            t0 = trio.current_time()
            anchor = await rt.submit("note", "anchor")
            due = datetime.fromtimestamp(round(anchor.created_at) + 120, UTC)
            aware = await rt.submit("note", "aware", run_at=due.isoformat())
            naive = await rt.submit("note", "naive", run_at=due.replace(tzinfo=None).isoformat())
            assert aware.run_at == naive.run_at == due.timestamp()
            await testing.run_until_idle(rt)
        offset = due.timestamp() - anchor.created_at
        assert started["aware"] - t0 == pytest.approx(offset, abs=1e-3)
        assert started["naive"] == started["aware"]

    async def test_run_at_in_the_past_is_due_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A run_at already gone by queues the task straight away."""
        async with open_runtime(App(), workers=0) as rt:
            assert (await rt.submit("echo", 1, run_at="2001-01-01T00:00:00Z")).status is S.QUEUED


class TestRunUntilIdle:
    async def test_waits_for_delayed_work(self, autojump_clock: trio.testing.MockClock) -> None:
        """run_until_idle returns only once delayed and retried tasks have ended too."""
        app, started = recording_app()
        async with testing.open_test_runtime(app) as rt:
            t0 = trio.current_time()
            tasks = [await rt.submit("note", i, delay=i * 100) for i in range(1, 6)]
            await testing.run_until_idle(rt)
            assert trio.current_time() - t0 == pytest.approx(500, abs=1)
            statuses = [(await rt.get(t.id)).status for t in tasks]
            assert await testing.active_count(rt) == 0
        assert statuses == [S.COMPLETED] * 5
        assert sorted(started) == [1, 2, 3, 4, 5]

    async def test_returns_at_once_when_idle(self, autojump_clock: trio.testing.MockClock) -> None:
        """With no work at all it does not wait."""
        async with testing.open_test_runtime(App()) as rt:
            start = trio.current_time()
            await testing.run_until_idle(rt)
            assert trio.current_time() == start

    async def test_times_out(self, autojump_clock: trio.testing.MockClock) -> None:
        """Work that outlasts the timeout raises TooSlowError."""
        async with testing.open_test_runtime(App()) as rt:
            task = await rt.submit("echo", 1, delay=1000)
            with pytest.raises(trio.TooSlowError):
                await testing.run_until_idle(rt, timeout=10)
            await rt.cancel(task.id)
