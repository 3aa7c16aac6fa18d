"""Bounded resources in the runtime: a slow subscriber is dropped, handlers run for a
bounded time (``max_duration``), and the built-in sleep is finite."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from trellis_actors import App, TaskContext, TaskStatus, ValidationError, testing
from trellis_actors.builtin_tasks import SLEEP_MAX_DURATION, SLEEP_MAX_SECONDS

S = TaskStatus


class TestSlowSubscriber:
    async def test_a_subscriber_a_whole_buffer_behind_is_dropped(self) -> None:
        """A subscriber that never reads gets its buffer's worth of batches, then the
        stream ends saying why; the store goes on (every task completes) and a reader
        keeps receiving."""
        async with testing.open_test_runtime(workers=2) as rt:
            async with rt.subscribe(buffer=3) as slow, rt.subscribe() as reader:
                tasks = [await rt.submit("echo", i) for i in range(10)]
                for task in tasks:
                    assert (await rt.wait(task.id, timeout=30)).status is S.COMPLETED
                last = await rt.submit("echo", "after")
                with trio.fail_after(30):
                    async for move in reader:
                        if move.task.id == last.id and move.task.status is S.COMPLETED:
                            break
                with trio.fail_after(30):  # the stream ends: it is not left open
                    received = [move async for move in slow]
            assert slow.dropped is not None and "too slow" in slow.dropped
            assert reader.dropped is None
            # Three batches were kept: each holds one commit's transitions, at least one.
            assert 3 <= len(received) < 40
            assert received[0].task.id == tasks[0].id

    async def test_batches_also_end_with_the_reason(self) -> None:
        """EventStream.batches() stops at the drop too, with dropped set."""
        async with testing.open_test_runtime(workers=1) as rt:
            async with rt.subscribe(buffer=1) as slow:
                for i in range(3):
                    await rt.wait((await rt.submit("echo", i)).id, timeout=30)
                with trio.fail_after(30):
                    batches = [batch async for batch in slow.batches()]
            assert len(batches) == 1 and slow.dropped is not None

    async def test_a_buffer_below_one_is_refused(self) -> None:
        async with testing.open_test_runtime(workers=1) as rt:
            with pytest.raises(ValueError, match="buffer must be at least 1"):
                async with rt.subscribe(buffer=0):
                    pass


class TestMaxDuration:
    async def test_a_handler_past_max_duration_times_out(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A type with max_duration=1 and no timeout: its attempt ends after 1 second."""
        app = App()

        @app.task(name="hang", max_duration=1, max_attempts=1)
        async def hang(ctx: TaskContext, payload: Any) -> None:
            await trio.sleep_forever()

        async with testing.open_test_runtime(app, workers=1) as rt:
            started = trio.current_time()
            with trio.fail_after(3600):  # virtual seconds
                done = await rt.wait((await rt.submit("hang")).id)
            assert trio.current_time() - started == pytest.approx(1, abs=1e-6)
        assert done.error is not None and done.error.type == "TaskTimeout"
        assert done.error.message == "ran past its 1s timeout"

    async def test_max_duration_caps_the_type_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A task with a shorter timeout keeps it; a type's longer timeout is capped."""
        app = App()

        @app.task(name="hang", max_duration=2, max_attempts=1)
        async def hang(ctx: TaskContext, payload: Any) -> None:
            await trio.sleep_forever()

        async with testing.open_test_runtime(app, workers=1) as rt:
            started = trio.current_time()
            with trio.fail_after(3600):
                await rt.wait((await rt.submit("hang", timeout=0.5)).id)
            assert trio.current_time() - started == pytest.approx(0.5, abs=1e-6)

    async def test_a_longer_timeout_is_refused_at_submit(self) -> None:
        """Asking for more time than max_duration is a ValidationError naming timeout."""
        app = App()

        @app.task(name="short", max_duration=10)
        async def short(ctx: TaskContext, payload: Any) -> None:
            pass

        async with testing.open_test_runtime(app, workers=1) as rt:
            with pytest.raises(ValidationError, match="timeout must be at most 10 seconds"):
                await rt.submit("short", timeout=11)
            with pytest.raises(ValidationError) as caught:
                await rt.submit_many(
                    [{"type": "short", "timeout": 10}, {"type": "short", "timeout": 20}]
                )
            assert caught.value.field == "[1].timeout"
            assert (await rt.submit("short", timeout=10)).timeout == 10
            assert (await rt.list()).items[0].timeout == 10


class TestBuiltinSleep:
    async def test_a_sleep_past_the_bound_is_refused_at_submit(self) -> None:
        """sleep's payload allows an hour at most; its type has a finite max_duration."""
        async with testing.open_test_runtime(workers=1) as rt:
            with pytest.raises(ValidationError) as caught:
                await rt.submit("sleep", {"seconds": SLEEP_MAX_SECONDS + 1})
            assert caught.value.field == "payload.seconds"
            with pytest.raises(ValidationError) as too_long:
                await rt.submit("sleep", {"seconds": 1}, timeout=SLEEP_MAX_DURATION + 1)
            assert too_long.value.field == "timeout"
            assert rt.app.get("sleep").max_duration == SLEEP_MAX_DURATION
            assert (await rt.list()).items == []

    async def test_the_longest_sleep_completes(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An hour's sleep fits in its max_duration."""
        async with testing.open_test_runtime(workers=1) as rt:
            task = await rt.submit("sleep", {"seconds": SLEEP_MAX_SECONDS})
            done = await rt.wait(task.id)
        assert (done.status, done.result) == (S.COMPLETED, {"slept": SLEEP_MAX_SECONDS})
