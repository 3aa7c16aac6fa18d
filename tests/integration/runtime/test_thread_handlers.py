"""Plain ``def`` handlers run in worker threads: results, retries, timeouts, cancels,
progress, abandoned threads, leases; and the watch that finds a blocking ``async def``.

Real threads in real time (trio's virtual clock would jump while a thread works), with
short durations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
import trio
from prometheus_client import generate_latest

from trellis_actors import App, Backoff, Runtime, TaskContext, TaskStatus, open_runtime
from trellis_actors.observability.metrics import Metrics

from .kit import submit_until

FAST = Backoff(initial=0.01, maximum=0.01, multiplier=1.0, jitter=0.0)


class Flaky(Exception):
    pass


@contextmanager
def released(gate: threading.Event) -> Iterator[threading.Event]:
    """Open ``gate`` on the way out, so that no handler thread outlives the test."""
    try:
        yield gate
    finally:
        gate.set()


async def until_no_abandoned(rt: Runtime) -> None:
    """Wait (5 s at most) until every abandoned thread has returned."""
    with trio.fail_after(5):
        while rt.threads.abandoned():  # noqa: ASYNC110  # set by a thread: no trio.Event
            await trio.sleep(0.01)


class TestThreadHandlers:
    """A ``def`` handler runs in a thread, with the same policies as an async one."""

    async def test_runs_in_a_thread(self) -> None:
        """The result comes back; the handler ran off the event loop's thread."""
        app = App(builtins=False)
        seen: list[int] = []

        @app.task
        def double(ctx: TaskContext, payload: int) -> int:
            seen.append(threading.get_ident())
            ctx.log.info("doubling", value=payload)
            return payload * 2

        async with open_runtime(app, workers=2) as rt:
            done = await rt.wait((await rt.submit("double", 21)).id, timeout=10)
        assert done.status is TaskStatus.COMPLETED and done.result == 42
        assert seen and seen[0] != threading.get_ident()

    async def test_retries(self) -> None:
        """An exception in ``retry_on`` retries, as for async handlers; others fail at once."""
        app = App(builtins=False)
        calls: list[int] = []

        @app.task(max_attempts=3, backoff=FAST, retry_on=Flaky)
        def flaky(ctx: TaskContext, payload: Any) -> str:
            calls.append(ctx.attempt)
            if ctx.attempt < 3:
                raise Flaky("not yet")
            return "third time"

        @app.task(max_attempts=3, backoff=FAST, retry_on=Flaky)
        def broken(ctx: TaskContext, payload: Any) -> None:
            raise KeyError("nope")

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("flaky")).id, timeout=10)
            failed = await rt.wait((await rt.submit("broken")).id, timeout=10)
        assert done.status is TaskStatus.COMPLETED and done.result == "third time"
        assert calls == [1, 2, 3]
        assert failed.status is TaskStatus.DEAD and failed.attempt == 1
        assert failed.error is not None and failed.error.type == "KeyError"

    async def test_progress_from_a_thread(self) -> None:
        """``ctx.progress`` works without ``await`` and reaches the task at once."""
        app = App(builtins=False)
        gate = threading.Event()

        @app.task
        def halfway(ctx: TaskContext, payload: Any) -> None:
            ctx.progress(0.5, "half way")
            gate.wait(10)

        with released(gate):
            async with open_runtime(app, workers=1) as rt:
                task = await submit_until(rt, TaskStatus.RUNNING, "halfway")
                with trio.fail_after(5):
                    while (await rt.get(task.id)).progress is None:  # noqa: ASYNC110
                        await trio.sleep(0.01)  # polls the store: no event to wait on
                got = await rt.get(task.id)
                assert (got.progress, got.progress_message) == (0.5, "half way")
                gate.set()
                assert (await rt.wait(task.id, timeout=10)).status is TaskStatus.COMPLETED


class TestAbandoned:
    """A thread cannot be killed: its attempt is settled at once and the thread told."""

    async def test_timeout(self) -> None:
        """Past its timeout the attempt ends ``TaskTimeout`` at once; ``ctx.cancelled()``
        turns true; the thread shows as abandoned (log, gauge, /debug) and keeps its
        limiter token until it returns; its late result is discarded."""
        app = App(builtins=False)
        gate = threading.Event()
        told: list[bool] = []

        @app.task(timeout=0.2, max_attempts=1)
        def stuck(ctx: TaskContext, payload: Any) -> str:
            gate.wait(10)
            told.append(ctx.cancelled())
            ctx.progress(1.0, "too late")  # ignored: the attempt is over
            return "late"

        metrics = Metrics(node="n1")
        with released(gate), structlog.testing.capture_logs() as logs:
            async with open_runtime(app, workers=1, threads=2) as rt:
                started = trio.current_time()
                failed = await rt.wait((await rt.submit("stuck")).id, timeout=10)
                assert trio.current_time() - started < 2  # settled, not waiting for the thread
                assert failed.status is TaskStatus.DEAD
                assert failed.error is not None and failed.error.type == "TaskTimeout"
                (abandoned,) = rt.threads.abandoned()
                assert (abandoned.task_id, abandoned.type) == (failed.id, "stuck")
                assert rt.threads.limiter.borrowed_tokens == 1  # still counted
                worker = rt.snapshot().find("worker-1")
                assert worker is not None and worker.details is not None
                assert worker.details["abandoned_threads"][0]["task_id"] == failed.id
                await metrics.refresh(rt)
                assert b'trellis_threads_abandoned{node="n1"} 1.0' in generate_latest(
                    metrics.registry
                )
                gate.set()
                await until_no_abandoned(rt)
                assert rt.threads.limiter.borrowed_tokens == 0
                after = await rt.get(failed.id)
                await metrics.refresh(rt)
                assert b'trellis_threads_abandoned{node="n1"} 0.0' in generate_latest(
                    metrics.registry
                )
        assert told == [True]
        assert after.status is TaskStatus.DEAD and after.result is None
        assert after.progress is None
        warnings = [
            e for e in logs if e["log_level"] == "warning" and e.get("task_type") == "stuck"
        ]
        assert warnings and "runs on after its attempt ended" in warnings[0]["event"]
        assert warnings[0]["task_id"] == failed.id

    async def test_cancel_while_running(self) -> None:
        """A cancel settles the task as cancelled at once; the thread sees ``cancelled()``."""
        app = App(builtins=False)
        gate = threading.Event()
        told = threading.Event()

        @app.task
        def patient(ctx: TaskContext, payload: Any) -> None:
            gate.set()
            while not ctx.cancelled():
                time.sleep(0.005)
            told.set()

        async with open_runtime(app, workers=1) as rt:
            task = await rt.submit("patient")
            await trio.to_thread.run_sync(gate.wait, 10)
            await rt.cancel(task.id)
            done = await rt.wait(task.id, timeout=10)
            assert done.status is TaskStatus.CANCELLED
            assert await trio.to_thread.run_sync(told.wait, 10)
            await until_no_abandoned(rt)


class TestLeases:
    """Lease renewal is the queue's timer: a long thread handler never loses its lease."""

    async def test_long_work_keeps_its_lease(self) -> None:
        """A 3 s blocking handler under a 1 s lease, with the janitor sweeping often: the
        lease is renewed all along (sampled from the loop while the handler blocks its
        thread), and the task runs once and completes, never recovered."""
        app = App(builtins=False)
        runs: list[int] = []

        @app.task
        def long(ctx: TaskContext, payload: Any) -> str:
            runs.append(ctx.attempt)
            time.sleep(3)
            return "done"

        async with open_runtime(app, workers=1, lease=1.0, janitor_interval=0.2) as rt:
            task = await submit_until(rt, TaskStatus.RUNNING, "long")
            samples = 0
            while (now := await rt.get(task.id)).status is TaskStatus.RUNNING:
                expires = now.lease_expires_at
                assert expires is not None and expires > rt._now(), "the lease ran out"
                samples += 1
                await trio.sleep(0.2)
            done = await rt.wait(task.id, timeout=20)
            events = await rt.events(done.id)
        assert samples >= 10  # the loop ran all along: a blocked loop samples once or twice
        assert done.status is TaskStatus.COMPLETED and done.attempt == 1
        assert runs == [1]
        assert [e.to_status for e in events].count(TaskStatus.RUNNING) == 1


class TestBlockedLoop:
    """An ``async def`` that blocks the loop is named in a warning and a metric."""

    async def test_blocking_async_handler(self) -> None:
        """A 0.3 s ``time.sleep`` in an async handler: one warning naming its type (found
        on the loop's stack), saying what to do, and one count in the metric."""
        app = App(builtins=False)

        @app.task
        async def blocker(ctx: TaskContext, payload: Any) -> None:
            time.sleep(0.3)  # noqa: ASYNC251  # the mistake this test is about

        metrics = Metrics(node="n1")
        with structlog.testing.capture_logs() as logs:
            async with open_runtime(app, workers=1, blocked_loop_warning=0.1) as rt:
                await rt.wait((await rt.submit("blocker")).id, timeout=10)
                await metrics.refresh(rt)
                text = generate_latest(metrics.registry).decode()
        assert rt.loop_watch.blocked.get("blocker") == 1
        assert 'trellis_event_loop_blocked_total{node="n1",task_type="blocker"} 1.0' in text
        (warning,) = [
            e
            for e in logs
            if "event loop is blocked" in e["event"] and e.get("task_type") == "blocker"
        ]
        assert warning["log_level"] == "warning" and warning["task_type"] == "blocker"
        assert "plain def" in warning["event"] and "executor='process'" in warning["event"]
        assert warning["blocked_ms"] >= 100

    async def test_off(self) -> None:
        """``blocked_loop_warning=None`` starts no watch thread."""
        before = {t.name for t in threading.enumerate()}
        async with open_runtime(App(), workers=1, blocked_loop_warning=None) as rt:
            names = {t.name for t in threading.enumerate()} - before
            assert "trellis-loop-watch" not in names
            assert rt.loop_watch.blocked == {}


@pytest.mark.parametrize("threads", [None, 3])
async def test_limiter_size(threads: int | None) -> None:
    """One limiter per runtime, as big as ``threads`` (default: the worker count)."""
    async with open_runtime(App(), workers=2, threads=threads) as rt:
        assert rt.threads.limiter.total_tokens == (threads or 2)
