"""The worker's side of process handlers: the test plays the process pool (and the
queue), answering ``RunInProcess`` as the pool does and watching for ``CancelRun``."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

from trellis_actors import App, TaskContext, TaskStatus
from trellis_actors._time import Clock
from trellis_actors.actors import ChildSpec
from trellis_actors.lifecycle import Task, TaskError
from trellis_actors.runtime.messages import Assign, QueueMsg, Ready, ReportProgress, Started
from trellis_actors.runtime.processes import CancelRun, ProcessOutcome, RunInProcess
from trellis_actors.runtime.worker import Worker

S = TaskStatus


class Flaky(Exception):
    pass


def crunch(ctx: TaskContext, payload: Any) -> Any:
    """A process handler (the test's pool never calls it)."""
    return payload


@dataclass
class Harness:
    queue: ChildSpec
    pool: ChildSpec
    worker: Worker
    progress: list[ReportProgress]

    async def next_ready(self) -> Ready:
        with trio.fail_after(60):
            while True:
                msg: QueueMsg = await self.queue.mailbox.get()
                if isinstance(msg, Ready):
                    return msg
                if isinstance(msg, ReportProgress):
                    self.progress.append(msg)
                else:
                    assert isinstance(msg, Started)

    async def next_run(self) -> RunInProcess:
        with trio.fail_after(60):
            msg = await self.pool.mailbox.get()
        assert isinstance(msg, RunInProcess)
        return msg


def task(timeout: float | None = None) -> Task:
    return Task(id="t1", type="crunch", queue="default", payload={"n": 3}, status=S.QUEUED,
                max_attempts=3, timeout=timeout)  # fmt: skip


@asynccontextmanager
async def worker() -> AsyncIterator[Harness]:
    app = App(builtins=False)
    app.task(crunch, executor="process", retry_on=Flaky)
    queue = ChildSpec("queue", lambda: None, mailbox_size=math.inf)  # type: ignore[arg-type,return-value]
    pool = ChildSpec("processes", lambda: None, mailbox_size=math.inf)  # type: ignore[arg-type,return-value]
    actor = Worker(app, owner="node-1", queue=queue.ref, clock=Clock(), processes=pool.ref)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        harness = Harness(queue, pool, actor, [])
        await harness.next_ready()
        yield harness
        actor.request_stop()


class TestProcessOutcomes:
    async def test_result(self, autojump_clock: trio.testing.MockClock) -> None:
        """The request carries the handler, the payload as JSON and the job; a JSON result
        completes the task."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(),)))
            run = await h.next_run()
            assert (run.job, run.handler, json.loads(run.payload)) == ("t1:1", crunch, {"n": 3})
            run.reply.send(ProcessOutcome(result='{"sum": 6}', exception=None, error=None))
            ready = await h.next_ready()
        assert [(o.status, o.result) for o in ready.outcomes] == [(S.COMPLETED, {"sum": 6})]

    async def test_exception_follows_retry_on(self, autojump_clock: trio.testing.MockClock) -> None:
        """The handler's own exception meets ``retry_on``: Flaky retries, others fail."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(),)))
            (await h.next_run()).reply.send(ProcessOutcome(None, Flaky("again"), None))
            first = await h.next_ready()
            await h.worker.ref.tell(Assign((task(),)))
            (await h.next_run()).reply.send(ProcessOutcome(None, KeyError("k"), None))
            second = await h.next_ready()
        ((o1,), (o2,)) = first.outcomes, second.outcomes
        assert o1.status is S.RETRYING and o1.error is not None and o1.error.type == "Flaky"
        assert o2.status is S.FAILED and o2.error is not None and o2.error.type == "KeyError"

    async def test_pool_error(self, autojump_clock: trio.testing.MockClock) -> None:
        """A crashed process's ``WorkerCrashed`` is the attempt's error, and retries."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(),)))
            crash = TaskError("WorkerCrashed", "the process died")
            (await h.next_run()).reply.send(ProcessOutcome(None, None, crash))
            ready = await h.next_ready()
        ((outcome,),) = (ready.outcomes,)
        assert (outcome.status, outcome.error) == (S.RETRYING, crash)

    async def test_timeout_kills_the_run(self, autojump_clock: trio.testing.MockClock) -> None:
        """Progress from the pool reaches the queue; past the timeout the attempt ends
        TaskTimeout (not in ``retry_on``: failed) and the pool is told to kill the run."""
        async with worker() as h:
            await h.worker.ref.tell(Assign((task(timeout=5),)))
            run = await h.next_run()
            run.progress(0.5, "half")  # the pool calls it in its loop
            ready = await h.next_ready()
            with trio.fail_after(1):
                cancel = await h.pool.mailbox.get()
        ((outcome,),) = (ready.outcomes,)
        assert outcome.status is S.FAILED and outcome.error is not None
        assert outcome.error.type == "TaskTimeout"
        assert cancel == CancelRun("t1:1")
        assert h.progress == [ReportProgress("t1", 0.5, "half")]
