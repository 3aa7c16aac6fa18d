"""Cancelling tasks: pending, queued, retrying and running ones; finished ones refuse."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import path, submit_until

from trellis_actors import (
    App,
    Backoff,
    InvalidTransition,
    Retry,
    TaskContext,
    TaskStatus,
    open_runtime,
    testing,
)

S = TaskStatus


class Blocker:
    """An app whose ``block`` handler waits until cancelled and notes what it saw."""

    def __init__(self) -> None:
        self.app = App()
        self.started = trio.Event()
        self.saw_cancel = trio.Event()
        self.runs: list[str] = []

        @self.app.task(name="block")
        async def block(ctx: TaskContext, payload: Any) -> None:
            self.runs.append(ctx.task_id)
            self.started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.saw_cancel.set()
                raise

        @self.app.task(name="later", backoff=Backoff(initial=1, jitter=0))
        async def later(ctx: TaskContext, payload: Any) -> None:
            self.runs.append(ctx.task_id)
            raise Retry(delay=1000)


class TestCancel:
    async def test_cancel_queued_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A queued task that is cancelled never runs."""
        blocker = Blocker()
        async with open_runtime(blocker.app, workers=0) as rt:
            task = await rt.submit("block")
            cancelled = await rt.cancel(task.id)
            assert (cancelled.status, cancelled.finished_at) == (S.CANCELLED, cancelled.updated_at)
            await rt.resize(1)
            after = await rt.wait((await rt.submit("echo", 1)).id)
            events = await rt.events(task.id)
        assert after.status is S.COMPLETED
        assert blocker.runs == []
        assert path(events) == ["pending", "queued", "cancelled"]
        assert events[-1].detail == "cancelled by request"

    async def test_cancel_pending_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A delayed task cancelled before it is due never runs, even once due."""
        blocker = Blocker()
        async with open_runtime(blocker.app, workers=1) as rt:
            task = await rt.submit("block", delay=60)
            await rt.cancel(task.id)
            marker = await rt.submit("echo", 1, delay=120)  # falls due after the cancelled one
            await rt.wait(marker.id)
            events = await rt.events(task.id)
        assert blocker.runs == []
        assert path(events) == ["pending", "cancelled"]

    async def test_cancel_retrying_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A task waiting for its next attempt is cancelled and the attempt never comes."""
        blocker = Blocker()
        async with open_runtime(blocker.app, workers=1) as rt:
            task = await submit_until(rt, S.RETRYING, "later")
            cancelled = await rt.cancel(task.id)
            marker = await rt.submit("echo", 1, delay=2000)  # after the retry would have run
            await rt.wait(marker.id)
            history = await rt.events(task.id)
        assert (cancelled.status, cancelled.attempt) == (S.CANCELLED, 1)
        assert blocker.runs == [task.id]
        assert path(history)[-3:] == ["running", "retrying", "cancelled"]

    async def test_cancel_running_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A running task's handler sees trio.Cancelled, the task ends cancelled, work goes on."""
        blocker = Blocker()
        async with open_runtime(blocker.app, workers=1) as rt:
            task = await rt.submit("block")
            await blocker.started.wait()
            cancelled = await rt.cancel(task.id)
            assert cancelled.status is S.CANCELLED
            assert (cancelled.lease_owner, cancelled.lease_expires_at) == (None, None)
            await blocker.saw_cancel.wait()
            after = await rt.wait((await rt.submit("echo", "next")).id)
            final = await rt.get(task.id)
            events = await rt.events(task.id)
            workers = await rt.workers()
        assert after.result == "next"
        assert final.status is S.CANCELLED
        assert path(events) == ["pending", "queued", "running", "cancelled"]
        assert [w.current_task for w in workers] == [None]

    async def test_cancel_running_task_through_its_scope(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A handler cancelling its own ctx.cancel_scope ends its attempt as cancelled."""
        app = App()

        @app.task(name="quitter")
        async def quitter(ctx: TaskContext, payload: Any) -> None:
            ctx.cancel_scope.cancel()
            await trio.sleep_forever()

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("quitter")).id)
        assert (done.status, done.attempt) == (S.CANCELLED, 1)

    async def test_cancel_a_waiting_prefetched_task(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A task already handed to a busy worker, but not started, is skipped when cancelled."""
        blocker = Blocker()
        ran: list[int] = []

        @blocker.app.task(name="count")
        async def count(ctx: TaskContext, payload: int) -> None:
            ran.append(payload)

        async with open_runtime(blocker.app, workers=0) as rt:
            first = await rt.submit("block", priority=10)
            tasks = [await rt.submit("count", i) for i in range(6)]
            # A deep backlog goes out a few tasks at a time: the one worker takes "block"
            # and the next three; the rest stay in the queue's buffer.
            await rt.resize(1)
            await blocker.started.wait()
            await rt.cancel(tasks[1].id)  # in the worker's hands, behind "block"
            await rt.cancel(tasks[4].id)  # still in the queue's buffer
            await rt.cancel(first.id)
            await testing.run_until_idle(rt)
            statuses = [(await rt.get(t.id)).status for t in tasks]
            history = await rt.events(tasks[1].id)
        assert ran == [0, 2, 3, 5]
        assert statuses == [
            S.COMPLETED,
            S.CANCELLED,
            S.COMPLETED,
            S.COMPLETED,
            S.CANCELLED,
            S.COMPLETED,
        ]
        assert path(history)[-2:] == ["queued", "cancelled"]  # it never started

    @pytest.mark.parametrize("ending", ["completed", "cancelled", "dead"])
    async def test_cancel_finished_task_is_refused(
        self, autojump_clock: trio.testing.MockClock, ending: str
    ) -> None:
        """A task that has ended cannot be cancelled: InvalidTransition says so."""
        app = App()

        @app.task(max_attempts=1)
        async def doomed(ctx: object, payload: object) -> None:
            raise RuntimeError("no")

        async with open_runtime(app, workers=1) as rt:
            if ending == "dead":
                task = await rt.submit(doomed)
            else:
                task = await rt.submit("sleep", {"seconds": 0})
            if ending == "cancelled":
                await rt.cancel(task.id)
            done = await rt.wait(task.id)
            assert done.status == ending
            with pytest.raises(
                InvalidTransition,
                match=f"task {task.id} cannot move from {ending} to cancelled",
            ):
                await rt.cancel(task.id)
            assert (await rt.get(task.id)).status == ending
