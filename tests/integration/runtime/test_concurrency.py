"""Concurrency limits, priorities and FIFO order, and resizing the worker pool."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import Gauge, path

from trellis_actors import App, TaskContext, TaskStatus, open_runtime, testing

S = TaskStatus


class TestConcurrency:
    @pytest.mark.parametrize("prefetch", [1, 4])
    async def test_global_limit_is_the_number_of_workers(
        self, autojump_clock: trio.testing.MockClock, prefetch: int
    ) -> None:
        """Handlers at once never exceed (and reach) the workers; prefetch=1 shares evenly."""
        app = App()
        gauge = Gauge()

        @app.task(name="work")
        async def work(ctx: TaskContext, payload: Any) -> None:
            with gauge.inside():
                await trio.sleep(5)

        async with open_runtime(app, workers=3, prefetch=prefetch) as rt:
            start = trio.current_time()
            for i in range(20):
                await rt.submit("work", i)
            await testing.run_until_idle(rt)
            elapsed = trio.current_time() - start
            workers = await rt.workers()
        assert (gauge.peak, gauge.entered, gauge.now) == (3, 20, 0)
        assert sum(w.tasks_done for w in workers) == 20
        if prefetch == 1:
            assert elapsed == pytest.approx(5 * 7)  # ceil(20 / 3) rounds of 5 s
            assert sorted(w.tasks_done for w in workers) == [6, 7, 7]

    async def test_per_type_limit(self, autojump_clock: trio.testing.MockClock) -> None:
        """concurrency= caps a type, others use the rest; waiting for a slot keeps the lease."""
        app = App()
        limited, free = Gauge(), Gauge()

        @app.task(name="limited", concurrency=2)
        async def limited_handler(ctx: TaskContext, payload: Any) -> int:
            with limited.inside():
                await trio.sleep(10)
            return ctx.attempt

        @app.task(name="free")
        async def free_handler(ctx: TaskContext, payload: Any) -> None:
            with free.inside():
                await trio.sleep(10)

        async with open_runtime(app, workers=6) as rt:
            # 12 limited tasks, two at a time: the last wait 50 s, past the 30 s lease.
            tasks = [await rt.submit("limited", i) for i in range(12)]
            for i in range(8):
                await rt.submit("free", i)
            await testing.run_until_idle(rt)
            done = [await rt.get(t.id) for t in tasks]
            histories = [path(await rt.events(t.id)) for t in tasks]
        assert (limited.peak, limited.entered) == (2, 12)
        assert free.peak == 4  # the other four workers
        assert [t.status for t in done] == [S.COMPLETED] * 12
        assert [t.attempt for t in done] == [1] * 12
        assert all(h == ["pending", "queued", "running", "completed"] for h in histories)

    async def test_priority_then_fifo(self, autojump_clock: trio.testing.MockClock) -> None:
        """With one worker, higher priorities run first and equal ones in submission order."""
        app = App()
        gate_open = trio.Event()
        gate_started = trio.Event()
        order: list[str] = []

        @app.task(name="gate")
        async def gate(ctx: TaskContext, payload: Any) -> None:
            gate_started.set()
            await gate_open.wait()

        @app.task(name="mark")
        async def mark(ctx: TaskContext, payload: str) -> None:
            order.append(payload)

        plan = [("a", 0), ("b", 5), ("c", 1), ("d", 5), ("e", 0), ("f", 10), ("g", -3), ("h", 5)]
        async with open_runtime(app, workers=1) as rt:
            await rt.submit("gate")
            await gate_started.wait()  # the worker is busy: everything below queues up
            for name, priority in plan:
                await rt.submit("mark", name, priority=priority)
            gate_open.set()
            await testing.run_until_idle(rt)
        assert order == ["f", "b", "d", "h", "c", "a", "e", "g"]

    async def test_fifo_across_many(self, autojump_clock: trio.testing.MockClock) -> None:
        """Many tasks of one priority run in exactly the order they were submitted."""
        app = App()
        order: list[int] = []

        @app.task(name="mark")
        async def mark(ctx: TaskContext, payload: int) -> None:
            order.append(payload)

        async with open_runtime(app, workers=0) as rt:
            await rt.submit_many([{"type": "mark", "payload": i} for i in range(100)])
            for i in range(100, 150):
                await rt.submit("mark", i)
            await rt.resize(1)
            await testing.run_until_idle(rt)
        assert order == list(range(150))


class TestResize:
    async def test_grow_and_shrink(self, autojump_clock: trio.testing.MockClock) -> None:
        """resize() adds and removes workers; the pool's size shows in the tree and stats."""
        app = App()
        gauge = Gauge()

        @app.task(name="work")
        async def work(ctx: TaskContext, payload: Any) -> None:
            with gauge.inside():
                await trio.sleep(1)

        async with open_runtime(app, workers=2) as rt:
            assert await rt.resize(5) == 5
            assert await rt.worker_count() == 5
            pool = rt.snapshot().find("workers")
            assert pool is not None
            assert [c.name for c in pool.children] == [f"worker-{i}" for i in range(1, 6)]
            for i in range(10):
                await rt.submit("work", i)
            await testing.run_until_idle(rt)
            assert gauge.peak == 5

            assert await rt.resize(1) == 1
            assert await rt.worker_count() == 1
            assert (await rt.stats())["workers"]["configured"] == 1
            gauge.peak = 0
            for i in range(4):
                await rt.submit("work", i)
            await testing.run_until_idle(rt)
            assert gauge.peak == 1

    async def test_shrinking_lets_busy_workers_finish(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Removing a busy worker waits for its task to complete instead of cancelling it."""
        app = App()
        started = trio.Event()

        @app.task(name="slow")
        async def slow(ctx: TaskContext, payload: Any) -> str:
            started.set()
            await trio.sleep(7)
            return "finished"

        async with open_runtime(app, workers=1, grace_period=30) as rt:
            task = await rt.submit("slow")
            await started.wait()
            t0 = trio.current_time()
            await rt.resize(0)
            assert trio.current_time() - t0 == pytest.approx(7, abs=0.1)
            done = await rt.get(task.id)
            assert (done.status, done.result) == (S.COMPLETED, "finished")
            assert await rt.worker_count() == 0
            waiting = await rt.submit("echo", 1)
            assert (await rt.get(waiting.id)).status is S.QUEUED
            await rt.resize(1)
            assert (await rt.wait(waiting.id)).status is S.COMPLETED
