"""Retries with backoff, dead-lettering, requeue and timeouts, in virtual time."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import assert_chained, path

from trellis_actors import (
    App,
    Backoff,
    InvalidTransition,
    Retry,
    TaskContext,
    TaskStatus,
    open_runtime,
)

S = TaskStatus


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Hang(Exception):
    """A plan entry: this attempt waits until it is cancelled."""


class Attempts:
    """An app whose ``job`` type records the trio time of each attempt and then raises what
    ``plan`` says for that attempt (None: succeed)."""

    def __init__(self, plan: list[BaseException | None], **policy: Any) -> None:
        self.app = App()
        self.times: list[float] = []
        self.cancelled: list[int] = []
        plan_of = plan

        @self.app.task(name="job", **policy)
        async def job(ctx: TaskContext, payload: Any) -> Any:
            self.times.append(trio.current_time())
            error = plan_of[min(ctx.attempt, len(plan_of)) - 1]
            if isinstance(error, Hang):
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    self.cancelled.append(ctx.attempt)
                    raise
            if error is not None:
                raise error
            return {"attempt": ctx.attempt}

    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.times)]


class TestBackoff:
    async def test_delays_follow_the_backoff_within_jitter(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The n-th retry waits initial * multiplier**(n-1), capped, less at most jitter."""
        backoff = Backoff(initial=10, maximum=50, multiplier=3, jitter=0.5)
        job = Attempts([Flaky("no")] * 4 + [None], max_attempts=5, backoff=backoff)
        async with open_runtime(job.app, workers=2) as rt:
            done = await rt.wait((await rt.submit("job")).id)
            events = await rt.events(done.id)
        assert (done.status, done.attempt, done.result) == (S.COMPLETED, 5, {"attempt": 5})
        for gap, base in zip(job.gaps(), [10, 30, 50, 50], strict=True):
            assert base * 0.5 - 1e-6 <= gap <= base + 1e-6
        retries = [e for e in events if e.to_status is S.RETRYING]
        assert [e.attempt for e in retries] == [1, 2, 3, 4]
        assert all(e.detail == "no" for e in retries)
        assert path(events) == ["pending", "queued"] + ["running", "retrying", "queued"] * 4 + [
            "running",
            "completed",
        ]
        assert_chained(events)

    async def test_no_jitter_means_exact_delays(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Without jitter the delays are exactly the exponential series."""
        backoff = Backoff(initial=2, maximum=100, multiplier=2, jitter=0)
        job = Attempts([Flaky()] * 4 + [None], max_attempts=5, backoff=backoff)
        async with open_runtime(job.app, workers=1) as rt:
            await rt.wait((await rt.submit("job")).id)
        assert job.gaps() == pytest.approx([2, 4, 8, 16], abs=1e-6)

    async def test_retry_delay_is_honoured_exactly(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Retry(delay=...) replaces the backoff for that attempt."""
        backoff = Backoff(initial=1000, maximum=1000, jitter=0)
        job = Attempts(
            [Retry(delay=7.25), Retry(delay=0), Retry(), None], max_attempts=4, backoff=backoff
        )
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job")).id)
        assert done.status is S.COMPLETED
        assert job.gaps() == pytest.approx([7.25, 0, 1000], abs=1e-6)

    async def test_retry_is_retried_even_outside_retry_on(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A handler's explicit Retry retries whatever retry_on says."""
        job = Attempts([Retry(delay=1), None], retry_on=Flaky)
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job")).id)
        assert (done.status, done.attempt) == (S.COMPLETED, 2)


class TestFailure:
    async def test_non_retryable_error_fails_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An error retry_on does not match ends the task on its first attempt."""
        job = Attempts([Fatal("broken for good"), None], retry_on=Flaky, max_attempts=5)
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job")).id)
            events = await rt.events(done.id)
        assert (done.status, done.attempt, len(job.times)) == (S.DEAD, 1, 1)
        assert done.error is not None
        assert (done.error.type, done.error.message) == ("Fatal", "broken for good")
        assert done.error.traceback is not None and "Fatal: broken for good" in done.error.traceback
        assert path(events)[-3:] == ["running", "failed", "dead"]

    async def test_exhausted_task_fails_then_goes_dead(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """After max_attempts the task fails, then goes dead; the events show both moves."""
        job = Attempts([Flaky("again")], max_attempts=3, backoff=Backoff(initial=1, jitter=0))
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job")).id)
            events = await rt.events(done.id)
            dead = await rt.list(status="dead")
        assert (done.status, done.attempt, len(job.times)) == (S.DEAD, 3, 3)
        assert path(events)[-3:] == ["running", "failed", "dead"]
        failed, to_dead = events[-2:]
        assert (failed.attempt, failed.detail) == (3, "again")
        assert to_dead.from_status is S.FAILED and to_dead.at == failed.at
        assert done.error is not None and done.error.type == "Flaky"
        assert [t.id for t in dead.items] == [done.id]

    async def test_without_dead_letter_the_task_stays_failed(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """dead_letter=False leaves an exhausted task failed."""
        job = Attempts([Flaky()], max_attempts=2, dead_letter=False)
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job")).id)
            events = await rt.events(done.id)
        assert (done.status, done.attempt) == (S.FAILED, 2)
        assert path(events)[-2:] == ["running", "failed"]

    async def test_max_attempts_per_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A submission's max_attempts overrides the type's."""
        job = Attempts([Flaky()], max_attempts=5, backoff=Backoff(initial=1, jitter=0))
        async with open_runtime(job.app, workers=1) as rt:
            done = await rt.wait((await rt.submit("job", max_attempts=1)).id)
        assert (done.status, done.attempt, len(job.times)) == (S.DEAD, 1, 1)


class TestRequeue:
    async def test_requeued_dead_task_runs_again_from_attempt_one(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An operator's requeue sends a dead task back with its attempts starting again."""
        app = App()
        attempts: list[int] = []

        @app.task(name="job", max_attempts=2, backoff=Backoff(initial=1, jitter=0))
        async def job(ctx: TaskContext, payload: Any) -> int:
            attempts.append(ctx.attempt)
            if len(attempts) <= 2:
                raise Flaky("not yet")
            return ctx.attempt

        async with open_runtime(app, workers=1) as rt:
            task = await rt.submit("job")
            dead = await rt.wait(task.id)
            assert (dead.status, dead.attempt) == (S.DEAD, 2)
            requeued = await rt.requeue(task.id)
            assert (requeued.status, requeued.attempt) == (S.QUEUED, 0)
            assert (requeued.error, requeued.finished_at) == (None, None)
            done = await rt.wait(task.id)
            events = await rt.events(task.id)
        assert (done.status, done.attempt, done.result, done.error) == (S.COMPLETED, 1, 1, None)
        assert attempts == [1, 2, 1]
        requeue = next(e for e in events if e.from_status is S.DEAD)
        assert (requeue.to_status, requeue.attempt, requeue.detail) == (
            S.QUEUED,
            0,
            "requeued by request",
        )
        assert [e.attempt for e in events if e.to_status is S.RUNNING] == [1, 2, 1]
        assert_chained(events)

    @pytest.mark.parametrize("status", ["completed", "queued"])
    async def test_only_dead_tasks_are_requeued(
        self, autojump_clock: trio.testing.MockClock, status: str
    ) -> None:
        """Requeueing anything but a dead task is an invalid transition."""
        async with open_runtime(App(), workers=1 if status == "completed" else 0) as rt:
            task = await rt.submit("echo", 1)
            if status == "completed":
                await rt.wait(task.id)
            with pytest.raises(
                InvalidTransition, match=f"is {status}; only dead tasks can be requeued"
            ):
                await rt.requeue(task.id)


class TestTimeout:
    async def test_task_timeout_counts_as_a_failure_and_retries(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A timeout cancels the handler, which sees it; the attempt retries as a TaskTimeout."""
        backoff = Backoff(initial=3, jitter=0)
        job = Attempts([Hang(), None], max_attempts=2, backoff=backoff)
        async with open_runtime(job.app, workers=1) as rt:
            task = await rt.submit("job", timeout=5)
            done = await rt.wait(task.id)
            events = await rt.events(task.id)
        assert (done.status, done.attempt, job.cancelled) == (S.COMPLETED, 2, [1])
        assert job.gaps() == pytest.approx([5 + 3], abs=1e-6)
        retrying = next(e for e in events if e.to_status is S.RETRYING)
        assert retrying.detail == "ran past its 5.0s timeout"
        running = next(e for e in events if e.to_status is S.RUNNING)
        assert retrying.at - running.at == pytest.approx(5, abs=1e-6)

    async def test_type_timeout_fails_when_attempts_run_out(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The type's timeout applies when the task has none; the last attempt fails."""
        job = Attempts([Hang()], max_attempts=1, timeout=2.5)
        async with open_runtime(job.app, workers=1) as rt:
            started = trio.current_time()
            done = await rt.wait((await rt.submit("job")).id)
            assert trio.current_time() - started == pytest.approx(2.5, abs=1e-6)
        assert (done.status, job.cancelled) == (S.DEAD, [1])
        assert done.error is not None and done.error.type == "TaskTimeout"
        assert done.error.message == "ran past its 2.5s timeout"

    async def test_task_timeout_overrides_the_type(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A submission's timeout wins over its type's."""
        job = Attempts([Hang()], max_attempts=1, timeout=100)
        async with open_runtime(job.app, workers=1) as rt:
            started = trio.current_time()
            done = await rt.wait((await rt.submit("job", timeout=1)).id)
            assert trio.current_time() - started == pytest.approx(1, abs=1e-6)
        assert done.error is not None and done.error.type == "TaskTimeout"

    async def test_timeout_is_per_attempt(self, autojump_clock: trio.testing.MockClock) -> None:
        """Each attempt gets the whole timeout, and a fast attempt is not cut short."""
        app = App()
        durations = iter([4.0, 4.0, 1.0])
        ran: list[float] = []

        @app.task(name="slowish", timeout=3, backoff=Backoff(initial=1, jitter=0))
        async def slowish(ctx: TaskContext, payload: Any) -> str:
            seconds = next(durations)
            ran.append(seconds)
            await trio.sleep(seconds)
            return "done"

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("slowish")).id)
        assert (done.status, done.attempt, ran) == (S.COMPLETED, 3, [4.0, 4.0, 1.0])

    async def test_a_handler_raising_timeout_itself_is_not_a_task_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A TooSlowError from the handler's own deadline is the handler's error."""
        app = App()

        @app.task(name="impatient", max_attempts=1, timeout=100)
        async def impatient(ctx: TaskContext, payload: Any) -> None:
            with trio.fail_after(1):
                await trio.sleep_forever()

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("impatient")).id)
        assert done.error is not None and done.error.type == "TooSlowError"
