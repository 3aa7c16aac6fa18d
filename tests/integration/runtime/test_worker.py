"""The worker actor over its protocol: the test plays the queue, reading the worker's
reports from a mailbox and sending it work and cancels, as the queue does."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
import trio.testing

from trellis_actors import App, TaskContext, TaskStatus
from trellis_actors._time import Clock
from trellis_actors.actors import ChildSpec
from trellis_actors.lifecycle import Task
from trellis_actors.runtime.messages import Assign, CancelTask, QueueMsg, Ready, Started
from trellis_actors.runtime.worker import Worker

S = TaskStatus
OWNER = "node-1"


@dataclass
class Harness:
    queue: ChildSpec
    worker: Worker
    gate: trio.Event

    async def next_ready(self) -> Ready:
        """The worker's next ``Ready`` (starts it reports on the way are skipped)."""
        with trio.fail_after(60):
            while True:
                msg: QueueMsg = await self.queue.mailbox.get()
                if isinstance(msg, Ready):
                    return msg
                assert isinstance(msg, Started)


def task(attempt: int = 0, payload: str = "quick") -> Task:
    return Task(id="t1", type="job", queue="default", payload=payload, status=S.QUEUED,
                attempt=attempt, max_attempts=5)  # fmt: skip


@asynccontextmanager
async def worker() -> AsyncIterator[Harness]:
    app = App()
    gate = trio.Event()

    @app.task(name="job")
    async def job(ctx: TaskContext, payload: str) -> int:
        if payload == "gated":
            await gate.wait()
        return ctx.attempt

    queue = ChildSpec("queue", lambda: None, mailbox_size=math.inf)  # type: ignore[arg-type,return-value]
    actor = Worker(app, owner=OWNER, queue=queue.ref, clock=Clock())
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        harness = Harness(queue, actor, gate)
        first = await harness.next_ready()
        assert (first.outcomes, first.released) == ((), ())
        yield harness
        actor.request_stop()


class TestStaleCancels:
    async def test_a_cancel_for_an_ended_attempt_does_not_touch_the_next(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A "lease lost" cancel that arrives after attempt 1 ended is ignored: attempt 2
        of the same task runs and completes."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(0),)))
            ready = await h.next_ready()
            assert [(o.attempt, o.status) for o in ready.outcomes] == [(1, S.COMPLETED)]
            await h.worker.ref.tell(CancelTask("t1", 1, "the task's lease was lost"))
            await h.worker.ref.tell(Assign((task(1),)))
            ready = await h.next_ready()
        assert [(o.attempt, o.status, o.result) for o in ready.outcomes] == [(2, S.COMPLETED, 2)]

    async def test_a_cancel_for_another_attempt_leaves_the_running_one(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """While attempt 2 runs, a cancel naming attempt 1 changes nothing; one naming
        attempt 2 cancels it."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(1, "gated"),)))
            await trio.testing.wait_all_tasks_blocked()
            await h.worker.ref.tell(CancelTask("t1", 1))
            await trio.testing.wait_all_tasks_blocked()
            assert h.worker._current is not None  # still running
            await h.worker.ref.tell(CancelTask("t1", 2))
            ready = await h.next_ready()
        assert [(o.attempt, o.status) for o in ready.outcomes] == [(2, S.CANCELLED)]

    async def test_a_task_cancelled_before_it_starts_goes_back(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A task waiting in the worker's hands behind a running one is given back
        unstarted when its attempt is cancelled (the store has ended it already)."""
        async with worker() as h:
            second = Task(id="t2", type="job", queue="default", payload="quick",
                          status=S.QUEUED, max_attempts=5)  # fmt: skip
            await h.worker.ref.tell(Assign((task(0, "gated"), second)))
            await trio.testing.wait_all_tasks_blocked()
            await h.worker.ref.tell(CancelTask("t2", 1))
            await trio.testing.wait_all_tasks_blocked()
            h.gate.set()
            ready = await h.next_ready()
        assert [(o.task_id, o.status) for o in ready.outcomes] == [("t1", S.COMPLETED)]
        assert ready.released == ("t2",)
