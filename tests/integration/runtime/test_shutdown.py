"""Graceful drain: leaving ``open_runtime`` lets running tasks finish within the grace
period, then gives the rest back to the store, where another runtime picks them up."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import path

from trellis_actors import App, TaskContext, TaskStatus, open_runtime
from trellis_actors.stores.memory import MemoryStore

S = TaskStatus


class Job:
    """An app whose ``job`` sleeps ``payload`` seconds (forever when None) and notes
    whether it was cancelled."""

    def __init__(self) -> None:
        self.app = App()
        self.started = trio.Event()
        self.runs: list[tuple[int, Any]] = []
        self.cancelled: list[int] = []

        @self.app.task(name="job")
        async def job(ctx: TaskContext, payload: Any) -> str:
            self.runs.append((ctx.attempt, payload))
            self.started.set()
            seconds = payload if len(self.runs) == 1 else 1
            try:
                await trio.sleep(seconds)
            except trio.Cancelled:
                self.cancelled.append(ctx.attempt)
                raise
            return f"slept {seconds}"


class TestDrain:
    async def test_running_task_finishes_within_the_grace_period(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Leaving the block waits for the running task, which completes and is stored."""
        job = Job()
        store = MemoryStore()
        async with open_runtime(job.app, store=store, workers=2, grace_period=10) as rt:
            task = await rt.submit("job", 6)
            await job.started.wait()
            left_at = trio.current_time()
        assert trio.current_time() - left_at == pytest.approx(6, abs=0.1)
        done = await store.get(task.id)
        assert done is not None
        assert (done.status, done.result, done.attempt) == (S.COMPLETED, "slept 6", 1)
        assert job.cancelled == []
        assert path(await store.events(task.id))[-1] == "completed"

    async def test_nothing_new_starts_while_draining(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Queued tasks are not started once the drain begins; they stay queued."""
        job = Job()
        store = MemoryStore()
        async with open_runtime(job.app, store=store, workers=1, grace_period=10) as rt:
            running = await rt.submit("job", 3)
            await job.started.wait()
            waiting = [await rt.submit("echo", i) for i in range(3)]
        assert (await store.get(running.id)).status is S.COMPLETED  # type: ignore[union-attr]
        for task in waiting:
            stored = await store.get(task.id)
            assert stored is not None and stored.status is S.QUEUED
            assert path(await store.events(task.id)) == ["pending", "queued"]

    async def test_idle_runtime_stops_at_once(self, autojump_clock: trio.testing.MockClock) -> None:
        """With nothing running, leaving the block does not wait for the grace period."""
        async with open_runtime(App(), workers=4, grace_period=60) as rt:
            await rt.wait((await rt.submit("echo", 1)).id)
            left_at = trio.current_time()
        assert trio.current_time() - left_at < 1


class TestGracePeriod:
    async def test_task_past_the_grace_period_is_released_and_runs_again(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Past the grace period a task goes back uncounted; a new runtime completes it."""
        job = Job()
        store = MemoryStore()
        async with open_runtime(job.app, store=store, workers=1, grace_period=2) as rt:
            task = await rt.submit("job", 1000)
            await job.started.wait()
            left_at = trio.current_time()
        assert trio.current_time() - left_at == pytest.approx(2, abs=0.1)
        assert job.cancelled == [1]
        released = await store.get(task.id)
        assert released is not None
        assert released.attempt == 0
        assert (released.lease_owner, released.finished_at) == (None, None)
        events = await store.events(task.id)
        # Given back as retrying, due at once: the queue, still up, may promote it.
        assert path(events)[:4] == ["pending", "queued", "running", "retrying"]
        assert path(events)[4:] in ([], ["queued"])
        assert released.status is events[-1].to_status
        assert events[3].detail == "released at shutdown; the attempt is not counted"
        assert events[3].attempt == 0

        async with open_runtime(job.app, store=store, workers=1) as rt:
            done = await rt.wait(task.id)
            events = await rt.events(task.id)
        assert (done.status, done.attempt, done.result) == (S.COMPLETED, 1, "slept 1")
        assert job.runs == [(1, 1000), (1, 1000)]
        assert path(events)[-3:] == ["queued", "running", "completed"]

    async def test_mixed_batch_at_shutdown(self, autojump_clock: trio.testing.MockClock) -> None:
        """Of a worker's batch, finished tasks stay, the rest go back; none lost or doubled."""
        app = App()
        started = trio.Event()
        runs: list[int] = []

        @app.task(name="step")
        async def step(ctx: TaskContext, payload: int) -> int:
            runs.append(payload)
            if payload == 2:
                started.set()
                await trio.sleep(1000)
            return payload

        store = MemoryStore()
        async with open_runtime(app, store=store, workers=0, grace_period=3) as rt:
            await rt.resize(1)
            for warm in range(-20, 0):  # measured as fast, "step" tasks go out in batches
                await rt.wait((await rt.submit("step", warm)).id)
            runs.clear()
            await rt.resize(0)
            tasks = [await rt.submit("step", i) for i in range(4)]
            await rt.resize(1)  # a deep backlog: the worker takes all four at once
            await started.wait()
            left_at = trio.current_time()
        assert trio.current_time() - left_at == pytest.approx(3, abs=0.1)
        statuses = [(await store.get(t.id)).status for t in tasks]  # type: ignore[union-attr]
        assert statuses[:2] == [S.COMPLETED, S.COMPLETED]
        assert set(statuses[2:]) <= {S.RETRYING, S.QUEUED}  # given back, due at once
        assert runs == [0, 1, 2]
        async with open_runtime(app, store=store, workers=1) as rt:
            done = [await rt.wait(t.id) for t in tasks]
        assert [t.status for t in done] == [S.COMPLETED] * 4
        # 3 never started: it kept its place in the queue; 2 was given back after a start.
        assert runs[:3] == [0, 1, 2] and sorted(runs[3:]) == [2, 3]
