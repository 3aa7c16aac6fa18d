"""The execution core's promises: a node claims only what it starts now, ``running`` means a
handler started, every outcome reached is committed before the node exits, and nothing a
handler raises escapes its attempt."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import path

from trellis_actors import App, Runtime, TaskContext, TaskStatus, open_runtime
from trellis_actors.stores import MemoryStore

S = TaskStatus


class Slow:
    """``slow`` sleeps its payload's seconds; ``busy`` counts the handlers running now."""

    def __init__(self) -> None:
        self.app = App()
        self.busy = 0
        self.started_at: dict[str, float] = {}

        @self.app.task(name="slow", max_attempts=1)
        async def slow(ctx: TaskContext, payload: float) -> None:
            self.busy += 1
            self.started_at[ctx.task_id] = trio.current_time()
            try:
                await trio.sleep(payload)
            finally:
                self.busy -= 1


class TestClaimOnlyWhatRuns:
    async def test_running_never_exceeds_busy_workers(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With 20 slow tasks and 2 workers, the store never shows more than 2 running,
        the rest stay queued (counted as queued), and the backlog drains two at a time."""
        slow = Slow()
        async with open_runtime(slow.app, workers=2) as rt:
            tasks = [await rt.submit("slow", 2) for _ in range(20)]
            seen = []
            while True:
                counts = await rt.counts()
                running = counts.total(S.RUNNING)
                seen.append(running)
                assert running <= 2, f"{running} running with 2 workers"
                assert counts.total(S.QUEUED) + running + counts.total(S.COMPLETED) == 20
                if counts.total(S.COMPLETED) == 20:
                    break
                await trio.sleep(0.25)
            assert max(seen) == 2
            done = [await rt.get(task.id) for task in tasks]
        assert all(task.status is S.COMPLETED and task.attempt == 1 for task in done)

    async def test_started_at_is_when_the_handler_started(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """``started_at`` and the running event are the handler's start, not the claim."""
        slow = Slow()
        async with open_runtime(slow.app, workers=1) as rt:
            t0 = trio.current_time()
            wall0 = rt._now()
            tasks = [await rt.submit("slow", 3) for _ in range(3)]
            done = [await rt.wait(task.id) for task in tasks]
            histories = [await rt.events(task.id) for task in tasks]
        for index, task in enumerate(done):
            started = slow.started_at[task.id] - t0
            assert started == pytest.approx(3 * index, abs=0.05)
            assert task.started_at is not None
            assert task.started_at - wall0 == pytest.approx(started, abs=0.05)
            running = [e for e in histories[index] if e.to_status is S.RUNNING]
            assert [e.at for e in running] == [task.started_at]
            assert (task.finished_at or 0) - task.started_at == pytest.approx(3, abs=0.05)

    async def test_a_graceful_stop_gives_back_what_did_not_start(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Tasks claimed ahead (fast ones) but not started go back at once on a graceful
        stop: queued, no lease, attempt count unchanged, no event."""
        app = App()
        gate, blocked = trio.Event(), trio.Event()

        @app.task(name="quick")
        async def quick(ctx: TaskContext, payload: int) -> None:
            if payload < 0:
                blocked.set()
                await gate.wait()

        store = MemoryStore()
        async with open_runtime(app, store=store, workers=1, grace_period=5) as rt:
            for i in range(5):  # measured: quick is fast
                await rt.wait((await rt.submit("quick", i)).id)
            # One commit: the idle worker's standing demand claims the blocker and fast
            # tasks ahead with it.
            blocker, *rest = await rt.submit_many(
                [{"type": "quick", "payload": -1, "priority": 10}]
                + [{"type": "quick", "payload": i} for i in range(40)]
            )
            await blocked.wait()
            await trio.sleep(0.05)  # a fast batch reports a start once it runs 10 ms
            assert (await rt.get(blocker.id)).status is S.RUNNING
            held = [t for t in [await store.get(t.id) for t in rest] if t and t.lease_owner]
            assert held, "nothing was claimed ahead: the test tests nothing"
            gate.set()
        for task in rest:
            stored = await store.get(task.id)
            assert stored is not None
            assert stored.status in (S.QUEUED, S.COMPLETED), stored.status
            assert stored.lease_owner is None and stored.lease_expires_at is None
            if stored.status is S.QUEUED:
                assert stored.attempt == 0
                assert path(await store.events(task.id)) == ["pending", "queued"]


class TestSettleBeforeExit:
    async def test_a_task_finishing_during_the_drain_is_committed(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A 6 s task reporting progress, stopped after 2 s: the node waits for it, and
        once the runtime has exited the store says completed, progress 1.0, once."""
        app = App()

        @app.task(name="report", max_attempts=1)
        async def report(ctx: TaskContext, payload: None) -> str:
            for step in range(1, 7):
                await trio.sleep(1)
                await ctx.progress(step / 6, f"{step}/6")
            return "done"

        store = MemoryStore()
        async with open_runtime(app, store=store, workers=1, grace_period=10) as rt:
            task = await rt.submit("report")
            await trio.sleep(2)
        stored = await store.get(task.id)
        history = path(await store.events(task.id))
        assert stored is not None
        assert (stored.status, stored.result, stored.progress) == (S.COMPLETED, "done", 1.0)
        assert history == ["pending", "queued", "running", "completed"]

    async def test_outcomes_on_their_way_to_a_slow_store_are_committed(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The store is slow to commit (a loaded disk): when the drain ends, one outcome
        is being committed and the next waits in the store's mail. Both are committed
        before the node exits."""
        app = App()

        @app.task(name="short", max_attempts=1)
        async def short(ctx: TaskContext, payload: float) -> str:
            await trio.sleep(payload)
            return "done"

        store = SlowStore()
        async with open_runtime(app, store=store, workers=2, grace_period=10) as rt:
            tasks = [await rt.submit("short", seconds) for seconds in (1.0, 1.5)]
            await trio.sleep(0.5)
            store.delay = 3.0  # from now on every commit of outcomes takes 3 s
        stored = [await store.get(task.id) for task in tasks]
        assert [(t.status, t.result) for t in stored if t] == [(S.COMPLETED, "done")] * 2

    async def test_hurry_commits_what_finished_and_gives_back_the_rest(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A second signal (``hurry``) during a drain: handlers that returned are
        committed, the one still running is cancelled and goes back uncounted."""
        app = App()
        release = trio.Event()
        started: list[str] = []

        @app.task(name="wait")
        async def wait(ctx: TaskContext, payload: str) -> str:
            started.append(payload)
            if payload == "forever":
                await trio.sleep_forever()
            await release.wait()
            return payload

        store = MemoryStore()
        async with trio.open_nursery() as nursery:
            rt = await nursery.start(Runtime(app, store=store, workers=4, grace_period=60).run)
            tasks = [await rt.submit("wait", p) for p in ("a", "b", "c", "forever")]
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(started) == ["a", "b", "c", "forever"]
            assert (await rt.counts()).total(S.RUNNING) == 4
            nursery.start_soon(rt.shutdown)
            await trio.sleep(1)  # draining: nothing ends within the grace period yet
            release.set()  # three handlers return ...
            rt.hurry()  # ... as the second signal comes
            stopped_at = trio.current_time()
        assert trio.current_time() - stopped_at < 10  # not the 60 s grace period
        stored = [await store.get(task.id) for task in tasks]
        statuses = [task.status if task else None for task in stored]
        assert statuses[:3] == [S.COMPLETED] * 3
        last = stored[3]
        assert last is not None and last.attempt == 0 and last.lease_owner is None
        assert last.status in (S.RETRYING, S.QUEUED)  # due at once: maybe promoted already
        assert "retrying" in path(await store.events(last.id))


class SlowStore(MemoryStore):
    """The memory store with commits of outcomes that take ``delay`` seconds."""

    delay = 0.0

    async def finish(self, outcomes: Any, now: float) -> Any:
        await trio.sleep(self.delay)
        return await super().finish(outcomes, now)


class TestContainment:
    @pytest.mark.parametrize(
        "raised", [SystemExit, KeyboardInterrupt, GeneratorExit, "custom"], ids=str
    )
    async def test_a_base_exception_fails_the_attempt_not_the_node(
        self, autojump_clock: trio.testing.MockClock, raised: Any
    ) -> None:
        """A handler raising any BaseException fails its attempt with its own type and
        message; the worker is not restarted and the node runs on."""

        class Custom(BaseException):
            pass

        error = Custom if raised == "custom" else raised
        app = App()

        @app.task(name="bad", max_attempts=2, retry_on=BaseException)
        async def bad(ctx: TaskContext, payload: None) -> None:
            raise error("from the handler")

        @app.task(name="good")
        async def good(ctx: TaskContext, payload: None) -> str:
            return "fine"

        async with open_runtime(app, workers=1) as rt:
            task = await rt.wait((await rt.submit("bad")).id)
            after = await rt.wait((await rt.submit("good")).id)
            worker = rt.snapshot().find("worker-1")
            events = path(await rt.events(task.id))
        assert task.status is S.DEAD
        assert task.error is not None
        assert (task.error.type, task.error.message) == (error.__name__, "from the handler")
        assert task.attempt == 2  # the retry policy applied: retry_on=BaseException
        assert events == [
            "pending", "queued", "running", "retrying", "queued", "running", "failed", "dead",
        ]  # fmt: skip
        assert after.status is S.COMPLETED
        assert worker is not None and worker.restarts == 0

    async def test_a_base_exception_outside_retry_on_is_not_retried(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """By default only Exceptions retry: a SystemExit fails the task at once."""
        app = App()

        @app.task(name="exits", max_attempts=3)
        async def exits(ctx: TaskContext, payload: None) -> None:
            raise SystemExit(3)

        async with open_runtime(app, workers=1) as rt:
            task = await rt.wait((await rt.submit("exits")).id)
        assert (task.status, task.attempt) == (S.DEAD, 1)
        assert task.error is not None and task.error.type == "SystemExit"

    async def test_what_a_handler_gives_back_is_storable(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A result no store can keep fails the attempt (it never reaches the store); an
        error or progress message with NUL or lone surrogates is stored with escapes."""
        app = App()

        @app.task(name="nul_result", max_attempts=1)
        async def nul_result(ctx: TaskContext, payload: None) -> dict[str, str]:
            return {"s": "a\x00b"}

        @app.task(name="nul_error", max_attempts=1)
        async def nul_error(ctx: TaskContext, payload: None) -> None:
            await ctx.progress(0.5, "half\x00way \udc80")
            raise ValueError("bad\x00byte \ud800")

        async with open_runtime(app, workers=1) as rt:
            result = await rt.wait((await rt.submit("nul_result")).id)
            error = await rt.wait((await rt.submit("nul_error")).id)
        assert result.error is not None and result.error.type == "ResultNotSerializable"
        assert error.error is not None
        assert error.error.message == "bad\\x00byte \\ud800"
        assert "\x00" not in (error.error.traceback or "")
        assert error.progress_message == "half\\x00way \\udc80"


class TestStaleCancel:
    async def test_a_lost_lease_does_not_cancel_the_next_attempt(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Attempt 1 loses its lease (another node's janitor takes the task back) just as
        its handler returns; the node's "lease lost" cancel then finds nothing running.
        Attempt 2, on the same worker, runs and completes: that cancel was not for it."""
        app = App()
        first_done = trio.Event()
        runs: list[int] = []

        @app.task(name="job", max_attempts=3)
        async def job(ctx: TaskContext, payload: None) -> int:
            runs.append(ctx.attempt)
            if ctx.attempt == 1:
                await first_done.wait()
            return ctx.attempt

        store = MemoryStore()
        async with open_runtime(app, store=store, workers=1, lease=0.9) as rt:
            task = await rt.submit("job")
            while not runs:  # noqa: ASYNC110 - virtual time: the handler's start
                await trio.sleep(0.01)
            # Another node's janitor, long after the lease: the task is taken back.
            (moved,) = await store.recover_expired(rt._now() + 100)
            assert moved.task.status is S.RETRYING
            first_done.set()  # ... as the handler returns
            done = await rt.wait(task.id)
        assert runs == [1, 2]
        assert (done.status, done.result, done.attempt) == (S.COMPLETED, 2, 2)
