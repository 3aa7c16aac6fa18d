"""The lifecycle event stream, and many tasks of mixed fortunes each ending exactly once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
import trio.testing
from tests.integration.runtime.kit import all_tasks, assert_chained, path

from trellis_actors import App, Backoff, Retry, TaskContext, TaskStatus, Transition, testing

S = TaskStatus


class TestSubscribe:
    async def test_every_transition_in_order(self, autojump_clock: trio.testing.MockClock) -> None:
        """subscribe() yields each move of each task once, in the order of its history."""
        app = App()

        @app.task(name="twice", backoff=Backoff(initial=2, jitter=0))
        async def twice(ctx: TaskContext, payload: Any) -> int:
            if ctx.attempt == 1:
                raise Retry()
            return ctx.attempt

        @app.task(max_attempts=1)
        async def doomed(ctx: TaskContext, payload: Any) -> None:
            raise RuntimeError("no")

        seen: list[Transition] = []
        async with testing.open_test_runtime(app, workers=2) as rt:
            async with rt.subscribe() as events:
                tasks = [
                    await rt.submit("twice"),
                    await rt.submit("echo", 1, delay=5),
                    await rt.submit("doomed"),
                ]
                ids = {t.id for t in tasks}
                ended = 0
                with trio.fail_after(600):
                    async for move in events:
                        seen.append(move)
                        if move.task.id in ids and move.task.status in (S.COMPLETED, S.DEAD):
                            ended += 1
                            if ended == len(ids):
                                break
            histories = {t.id: await rt.events(t.id) for t in tasks}
        for task in tasks:
            streamed = [move.event for move in seen if move.task.id == task.id]
            assert streamed == histories[task.id]
            for move in seen:
                if move.task.id == task.id:
                    assert move.task.status is move.event.to_status
        assert path(histories[tasks[0].id]) == [
            "pending", "queued", "running", "retrying", "queued", "running", "completed",
        ]  # fmt: skip
        assert path(histories[tasks[1].id]) == ["pending", "queued", "running", "completed"]
        assert path(histories[tasks[2].id])[-2:] == ["failed", "dead"]

    async def test_stream_ends_with_the_subscription(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Leaving the subscription closes it; the runtime goes on without the subscriber."""
        async with testing.open_test_runtime(App()) as rt:
            async with rt.subscribe() as events:
                pass
            assert [move async for move in events] == []
            done = await rt.wait((await rt.submit("echo", 1)).id)
        assert done.status is S.COMPLETED


class TestManyTasks:
    async def test_ten_thousand_tasks_each_end_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """10,000 tasks of mixed fortunes each reach exactly one end; the counts add up."""
        app = App()
        # No jitter: retries that fail together fall due together, one promotion each
        # (every distinct due time costs a wake-up; jittered, 10,000 of them are slow).
        quick = Backoff(initial=1, maximum=5, jitter=0)
        runs: Counter[str] = Counter()

        @app.task(name="ok")
        async def ok(ctx: TaskContext, payload: int) -> int:
            runs["ok"] += 1
            return payload

        @app.task(name="flaky", max_attempts=3, backoff=quick)
        async def flaky(ctx: TaskContext, payload: int) -> int:
            runs["flaky"] += 1
            if ctx.attempt < 1 + payload % 3:
                raise ConnectionError("try again")
            return ctx.attempt

        @app.task(name="doomed", max_attempts=2, backoff=quick)
        async def doomed(ctx: TaskContext, payload: int) -> None:
            runs["doomed"] += 1
            raise ValueError("never")

        @app.task(name="failing", max_attempts=1, dead_letter=False)
        async def failing(ctx: TaskContext, payload: int) -> None:
            runs["failing"] += 1
            raise ValueError("once and for all")

        kinds = ["ok", "flaky", "ok", "doomed", "ok", "flaky", "failing", "ok"]
        items = [{"type": kinds[i % len(kinds)], "payload": i} for i in range(10_000)]
        planned = Counter(item["type"] for item in items)
        async with testing.open_test_runtime(app, workers=8) as rt:
            for start in range(0, len(items), 500):
                await rt.submit_many(items[start : start + 500])
            await testing.run_until_idle(rt, timeout=3600)
            tasks = await all_tasks(rt)
            histories = {t.id: await rt.events(t.id) for t in tasks}
            counts = await rt.counts()
            stats = await rt.stats()

        assert len(tasks) == 10_000
        ends = {"ok": ["completed"], "flaky": ["completed"], "doomed": ["failed", "dead"]}
        ends["failing"] = ["failed"]
        by_status: Counter[str] = Counter()
        for task in tasks:
            events = histories[task.id]
            assert_chained(events)
            last_queued = max(i for i, e in enumerate(events) if e.to_status is S.QUEUED)
            assert path(events)[last_queued + 1 :] == ["running", *ends[task.type]], task
            terminal = [e for e in events if e.to_status.terminal]
            assert len(terminal) == len(ends[task.type])
            assert task.status is events[-1].to_status
            by_status[task.status.value] += 1

        flaky_runs = sum(1 + i % 3 for i in range(10_000) if kinds[i % len(kinds)] == "flaky")
        assert by_status == {
            "completed": planned["ok"] + planned["flaky"],
            "dead": planned["doomed"],
            "failed": planned["failing"],
        }
        assert counts.by_queue == {"default": dict(by_status)}
        assert runs == {
            "ok": planned["ok"],
            "flaky": flaky_runs,
            "doomed": 2 * planned["doomed"],
            "failing": planned["failing"],
        }
        assert stats["workers"]["tasks_done"] == sum(runs.values())
