"""The queue's prefetch: a worker is handed several fast tasks at once, but only about
``prefetch_budget`` (10 ms) of measured work, and never more than ``prefetch`` (16).

The real queue actor runs over the real store actor and memory store, under virtual
time; the test plays one worker, saying it is ``Ready`` the way a worker does, reporting
its outcomes with the next ``Ready``, and spending a task type's duration per task in
between. The ``Assign`` messages it gets are the batches the queue hands out.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from trellis_actors._time import Clock
from trellis_actors.actors import ChildSpec, Ref
from trellis_actors.lifecycle import Task, TaskStatus
from trellis_actors.runtime.messages import (
    Assign,
    QueueMsg,
    Ready,
    StoreMsg,
    Submit,
    WaitFor,
)
from trellis_actors.runtime.queue_actor import QueueActor, QueueConfig
from trellis_actors.runtime.store_actor import StoreActor
from trellis_actors.stores import MemoryStore, NewTask, Outcome

OWNER = "node-1"
BUDGET = QueueConfig(owner=OWNER).prefetch_budget
PREFETCH = QueueConfig(owner=OWNER).prefetch


@dataclass
class Queue:
    store: Ref[StoreMsg]
    queue: Ref[QueueMsg]

    async def submit(self, types: Sequence[str]) -> list[Task]:
        submitted = await self.store.ask(Submit(tuple(NewTask(t, i) for i, t in enumerate(types))))
        return [s.task for s in submitted]


@asynccontextmanager
async def queue_over_memory_store() -> AsyncIterator[Queue]:
    """A store actor over a memory store, and a queue actor claiming from it."""
    store = MemoryStore()
    await store.open()
    clock = Clock()
    config = QueueConfig(owner=OWNER)
    queue_spec = ChildSpec("queue", lambda: queue, mailbox_size=math.inf)
    store_actor = StoreActor(store, clock, queue_spec.ref)
    queue = QueueActor(store_actor.ref, clock, config)
    queue.bind(queue_spec)
    async with trio.open_nursery() as outer:
        await outer.start(store_actor.run)
        async with trio.open_nursery() as inner:
            await inner.start(queue.run)
            yield Queue(store_actor.ref, queue.ref)
            queue.request_stop()
        store_actor.request_stop()
    await store.close()


class Worker:
    """Says it is ready as a worker does, and 'runs' each task for its duration."""

    def __init__(self, queue: Queue, durations: Mapping[str, float]) -> None:
        self._queue = queue
        self._durations = durations
        self._spec = ChildSpec("worker-1", lambda: None, mailbox_size=16)  # type: ignore[arg-type,return-value]
        self._outcomes: tuple[Outcome, ...] = ()
        self.batches: list[tuple[Task, ...]] = []

    async def run(self, count: int) -> None:
        """Take and run ``count`` tasks, then report the last outcomes."""
        taken = 0
        while taken < count:
            await self._queue.queue.tell(Ready("worker-1", 1, self._spec.ref, self._outcomes))
            assigned = await self._spec.mailbox.get()
            assert isinstance(assigned, Assign)
            tasks = assigned.tasks
            self.batches.append(tasks)
            taken += len(tasks)
            outcomes = []
            for task in tasks:  # one after the other, as a worker runs its batch
                seconds = self._durations[task.type]
                await trio.sleep(seconds)
                done = TaskStatus.COMPLETED
                outcomes.append(Outcome(task.id, OWNER, task.attempt + 1, done, seconds=seconds))
            self._outcomes = tuple(outcomes)
        ready = Ready("worker-1", 1, self._spec.ref, self._outcomes, stopping=True)
        await self._queue.queue.tell(ready)
        self._outcomes = ()

    def work(self, batch: Sequence[Task]) -> float:
        return sum(self._durations[task.type] for task in batch)


async def all_completed(queue: Queue, tasks: list[Task]) -> None:
    with trio.fail_after(60):
        for task in tasks:
            done = await queue.store.ask(WaitFor(task.id))
            assert done.status is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("seconds", "most"),
    [
        (0.0, PREFETCH),  # no-op tasks: the count cap, not the budget, stops a batch
        (0.0015, 6),  # 6 x 1.5 ms fits in 10 ms, 7 would not
        (0.003, 3),
        (0.004, 2),  # the 4 ms task of the docs: two at a time
        (0.006, 1),  # not fast (over 5 ms): one at a time
        (0.05, 1),
    ],
)
async def test_a_batch_holds_about_the_budget_of_measured_work(
    autojump_clock: trio.testing.MockClock, seconds: float, most: int
) -> None:
    """With a deep backlog of one type, once its speed is measured, every batch handed
    to the worker is at most ``most`` tasks (10 ms of work, 16 tasks), and reaches it."""
    async with queue_over_memory_store() as queue:
        tasks = await queue.submit(["job"] * 60)
        worker = Worker(queue, {"job": seconds})
        await worker.run(len(tasks))
        await all_completed(queue, tasks)
    sizes = [len(batch) for batch in worker.batches]
    assert sizes[0] == 1  # not yet measured: one task only
    assert max(sizes) == most, sizes
    if most > 1:
        assert sizes[1] == most  # the backlog is deep: the first measured batch is full
        assert all(worker.work(batch) <= BUDGET + 1e-9 for batch in worker.batches)
    handed = [task.id for batch in worker.batches for task in batch]
    assert sorted(handed) == sorted(task.id for task in tasks)  # each task once


async def test_slow_and_unmeasured_tasks_go_alone(autojump_clock: trio.testing.MockClock) -> None:
    """A batch of fast tasks stops before a slow or unmeasured one, which goes alone."""
    durations = {"quick": 0.0, "slow": 0.05, "new": 0.0}
    async with queue_over_memory_store() as queue:
        warm = await queue.submit(["quick", "slow"])
        worker = Worker(queue, durations)
        await worker.run(len(warm))
        assert [len(batch) for batch in worker.batches] == [1, 1]

        worker.batches.clear()
        order = ["quick"] * 5 + ["slow"] + ["quick"] * 20 + ["new"] + ["quick"] * 20 + ["slow"]
        tasks = await queue.submit(order)
        await worker.run(len(tasks))
        await all_completed(queue, tasks)
    types = [[task.type for task in batch] for batch in worker.batches]
    for batch in types:
        assert len(batch) == 1 or set(batch) == {"quick"}, types
    assert ["new"] in types and types.count(["slow"]) == 2
    assert max(len(batch) for batch in types) == PREFETCH


async def test_a_type_batched_with_no_op_tasks_keeps_its_own_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Batches of a 4 ms type stay within the budget (two at a time), even after many of
    its tasks rode along in batches of no-op tasks."""
    durations = {"noop": 0.0, "four_ms": 0.004}
    async with queue_over_memory_store() as queue:
        warm = await queue.submit(["noop", "four_ms"])
        worker = Worker(queue, durations)
        await worker.run(len(warm))
        worker.batches.clear()
        tasks = await queue.submit((["noop"] * 15 + ["four_ms"]) * 10 + ["four_ms"] * 20)
        await worker.run(len(tasks))
        await all_completed(queue, tasks)
    worst = max(worker.batches, key=worker.work)
    assert worker.work(worst) <= BUDGET + 1e-9, [task.type for task in worst]
