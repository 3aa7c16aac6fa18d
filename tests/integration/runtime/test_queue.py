"""The queue actor settles what a worker held when the registry says it went down."""

from __future__ import annotations

import trio
import trio.testing
from tests.integration.runtime.test_prefetch import queue_over_memory_store

from trellis_actors._time import Clock
from trellis_actors.actors import ChildSpec
from trellis_actors.lifecycle import TaskStatus
from trellis_actors.runtime.messages import Assign, Get, Ready, Started, WorkerDown

S = TaskStatus


async def test_a_worker_down_gives_back_unstarted_and_fails_started_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Of the tasks a crashed worker held, the started one is a crashed attempt (retried),
    the unstarted one goes back to the queue as it was."""
    async with queue_over_memory_store() as queue:
        first, second = await queue.submit(["job", "job"])
        spec = ChildSpec("worker-1", lambda: None, mailbox_size=16)  # type: ignore[arg-type,return-value]
        await queue.queue.tell(Ready("worker-1", 1, spec.ref))
        assigned = await spec.mailbox.get()
        assert isinstance(assigned, Assign)
        (started,) = assigned.tasks
        await queue.queue.tell(Started("worker-1", started.id, 1, Clock().now()))
        await queue.queue.tell(Ready("worker-2", 1, spec.ref))  # takes the other one
        other = await spec.mailbox.get()
        assert isinstance(other, Assign)
        (unstarted,) = other.tasks
        await queue.queue.tell(WorkerDown("worker-1", 1))
        await queue.queue.tell(WorkerDown("worker-2", 1))
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)  # the queue's next flush
        crashed = await queue.store.ask(Get(started.id))
        back = await queue.store.ask(Get(unstarted.id))
    assert crashed is not None and crashed.status in (S.RETRYING, S.QUEUED)
    assert crashed.error is not None and crashed.error.type == "WorkerCrashed"
    assert crashed.attempt == 1
    assert back is not None and back.status is S.QUEUED
    assert (back.attempt, back.lease_owner) == (0, None)
    assert {first.id, second.id} == {started.id, unstarted.id}
