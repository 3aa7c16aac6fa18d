"""A task submitted to an idle node is claimed in the commit that stores it.

The queue keeps the store actor told of its standing demand; the store runs that claim in
the transaction that stores new due tasks. These tests watch ``Store.apply`` (the call
that writes a batch's submissions, outcomes and claims in one transaction) on each store.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from trellis_actors import App, Runtime, TaskContext, TaskStatus, open_runtime
from trellis_actors._time import Clock
from trellis_actors.actors import Ref
from trellis_actors.actors._mailbox import Mailbox
from trellis_actors.runtime.messages import Claimed, Demand, Drain, Finish, Submit
from trellis_actors.runtime.store_actor import StoreActor
from trellis_actors.stores import NewTask, Outcome, Store, open_store
from trellis_actors.stores.base import Work, WorkDone

S = TaskStatus
OWNER = "node-1"


class Recorder:
    """Wraps a store's ``apply``: every write of a batch, with what it did."""

    def __init__(self, store: Store) -> None:
        self.calls: list[tuple[Work, WorkDone]] = []
        real = store.apply

        async def apply(work: Work, now: float) -> WorkDone:
            done = await real(work, now)
            self.calls.append((work, done))
            return done

        store.apply = apply  # type: ignore[method-assign]  # the instance hides the method

    def claimed_with(self, task_id: str) -> list[str] | None:
        """The ids the commit that stored ``task_id`` claimed; None if none stored it."""
        for _, done in self.calls:
            if any(s.task.id == task_id for s in done.submitted):
                return [task.id for claimed in done.claimed for task in claimed]
        return None


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A real store, not yet opened (the runtime opens it)."""
    if request.param == "memory":
        return open_store("memory://")
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'tasks.db'}")
    url: str = request.getfixturevalue("pg_url")
    return open_store(url)


class Starts:
    """An app whose handlers note the order they start in; ``hold`` blocks ``gated``."""

    def __init__(self) -> None:
        self.app = App()
        self.order: list[Any] = []
        self.started: dict[Any, trio.Event] = {}
        self.gate = trio.Event()
        self.running_limited = 0
        self.peak_limited = 0

        @self.app.task(name="note")
        async def note(ctx: TaskContext, payload: Any) -> None:
            self.order.append(payload)
            self.started.setdefault(payload, trio.Event()).set()

        @self.app.task(name="gated")
        async def gated(ctx: TaskContext, payload: Any) -> None:
            self.order.append(payload)
            self.started.setdefault(payload, trio.Event()).set()
            await self.gate.wait()

        @self.app.task(name="limited", concurrency=1)
        async def limited(ctx: TaskContext, payload: Any) -> None:
            self.running_limited += 1
            self.peak_limited = max(self.peak_limited, self.running_limited)
            self.order.append(payload)
            self.started.setdefault(payload, trio.Event()).set()
            await self.gate.wait()
            self.running_limited -= 1

    async def wait_started(self, payload: Any) -> None:
        await self.started.setdefault(payload, trio.Event()).wait()


@pytest.fixture
async def idle(store: Store) -> AsyncIterator[tuple[Runtime, Recorder, Starts]]:
    """A runtime of two workers on ``store``, idle after one task ran to the end (its
    workers are then waiting for work, and the store knows it)."""
    starts = Starts()
    recorder = Recorder(store)
    async with open_runtime(starts.app, store=store, workers=2) as rt:
        await rt.wait((await rt.submit("note", "warm-up")).id)
        recorder.calls.clear()
        yield rt, recorder, starts
        starts.gate.set()


async def test_a_task_submitted_to_an_idle_node_is_claimed_in_the_commit_that_stores_it(
    idle: tuple[Runtime, Recorder, Starts],
) -> None:
    """No second trip through the store between a submission and its start."""
    rt, recorder, _ = idle
    task = await rt.submit("note", "one")
    done = await rt.wait(task.id)
    assert done.status is S.COMPLETED
    assert recorder.claimed_with(task.id) == [task.id]
    # Leases and attempts as ever: one attempt, started by this node.
    assert done.attempt == 1
    assert [e.to_status for e in await rt.events(task.id)] == [
        S.PENDING,
        S.QUEUED,
        S.RUNNING,
        S.COMPLETED,
    ]


async def test_priority_order_holds_with_fewer_idle_workers(
    idle: tuple[Runtime, Recorder, Starts],
) -> None:
    """Submitted together, more than the idle workers: the commit claims the highest
    priorities, and the rest start in priority order."""
    rt, recorder, starts = idle
    blocker = await rt.submit("gated", "blocker")  # one of the two workers is busy
    await starts.wait_started("blocker")
    tasks = await rt.submit_many(
        [{"type": "note", "payload": p, "priority": p} for p in (1, 5, 3, 4, 2)]
    )
    for task in tasks:
        await rt.wait(task.id)
    assert starts.order[-5:] == [5, 4, 3, 2, 1]
    # The commit that stored them claimed the highest first (as many as were wanted).
    claimed = recorder.claimed_with(tasks[0].id)
    best_first = [task.id for task in sorted(tasks, key=lambda task: -task.priority)]
    assert claimed and claimed == best_first[: len(claimed)]
    starts.gate.set()
    await rt.wait(blocker.id)


async def test_per_type_concurrency_limits_hold(
    idle: tuple[Runtime, Recorder, Starts],
) -> None:
    """A type at its limit is not claimed for the idle workers; another type is."""
    rt, recorder, starts = idle
    first = await rt.submit("limited", "limited-1")
    await starts.wait_started("limited-1")
    more, free = await rt.submit_many(
        [{"type": "limited", "payload": "limited-2"}, {"type": "note", "payload": "free"}]
    )
    await rt.wait(free.id)
    assert recorder.claimed_with(free.id) == [free.id]
    stored = await rt.get(more.id)
    assert stored.status is S.QUEUED and stored.lease_owner is None
    starts.gate.set()
    for task in (first, more):
        assert (await rt.wait(task.id)).status is S.COMPLETED
    assert starts.peak_limited == 1


async def test_a_draining_node_takes_no_new_work_this_way(
    idle: tuple[Runtime, Recorder, Starts],
) -> None:
    """Once the queue drains, a new task stays queued and unleased."""
    rt, recorder, _ = idle
    await rt.tree.queue.ask(Drain())
    task = await rt.submit("note", "late")
    assert not recorder.claimed_with(task.id)
    stored = await rt.get(task.id)
    assert stored.status is S.QUEUED and stored.lease_owner is None


# -- the store actor alone ----------------------------------------------------------------


@pytest.fixture
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_the_store_claims_for_the_standing_demand_and_tells_the_queue(
    opened: Store,
) -> None:
    """A batch with new due tasks runs the queue's standing demand as a claim in the
    same write; the queue hears ``Claimed``; a delayed task meets no demand; ``limit`` 0
    withdraws it."""
    clock = Clock()
    queue: Mailbox[Any] = Mailbox(math.inf)
    actor = StoreActor(opened, clock, Ref("queue", queue))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.ref.tell_nowait(Demand(None, 2, OWNER, 60.0))
        (late,) = await actor.ref.ask(Submit((NewTask("t", "late", run_at=clock.now() + 60),)))
        (first,) = await actor.ref.ask(Submit((NewTask("t", "first", priority=1),)))
        actor.ref.tell_nowait(Demand(None, 0, OWNER, 60.0))
        await actor.ref.ask(Submit((NewTask("t", "unclaimed"),)))
        actor.request_stop()
    told = [msg for msg in drain(queue) if isinstance(msg, Claimed)]
    assert [[task.id for task in msg.tasks] for msg in told] == [[first.task.id]]
    (claimed,) = told[0].tasks
    assert claimed.status is S.QUEUED and claimed.lease_owner == OWNER
    assert claimed.lease_expires_at == pytest.approx(clock.now() + 60, abs=5)
    stored = await opened.get(late.task.id)
    assert stored is not None and stored.lease_owner is None


async def test_what_the_queue_cannot_take_goes_back_at_once(opened: Store) -> None:
    """A claim for the standing demand that the queue cannot be told of (its mailbox is
    closed: it stopped) is given back in the same batch: queued, unleased, no attempt."""
    clock = Clock()
    queue: Mailbox[Any] = Mailbox(math.inf)
    queue.close()
    recorder = Recorder(opened)
    actor = StoreActor(opened, clock, Ref("queue", queue))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.ref.tell_nowait(Demand(None, 1, OWNER, 60.0))
        (new,) = await actor.ref.ask(Submit((NewTask("t", "new"),)))
        actor.request_stop()
    assert recorder.claimed_with(new.task.id) == [new.task.id]
    stored = await opened.get(new.task.id)
    assert stored is not None
    assert (stored.status, stored.lease_owner, stored.attempt) == (S.QUEUED, None, 0)


class _Gate:
    """Holds a store's ``finish`` until opened."""

    def __init__(self, store: Store) -> None:
        self.open = trio.Event()
        self.entered = trio.Event()
        real = store.finish

        async def finish(outcomes: Any, now: float) -> Any:
            self.entered.set()
            await self.open.wait()
            return await real(outcomes, now)

        store.finish = finish  # type: ignore[method-assign]  # the instance hides the method


async def test_on_a_concurrent_store_a_submission_does_not_wait_for_an_outcome_write(
    opened: Store,
) -> None:
    """On a store whose calls may run at the same time (PostgreSQL; the memory store
    told so here) new tasks are stored while the batch before them is still written."""
    if opened.url.startswith("sqlite"):
        pytest.skip("SQLite writes from one thread: its calls never run at the same time")
    if opened.url.startswith("memory"):
        opened.concurrent_calls = True  # type: ignore[attr-defined]  # as PostgreSQL's
    clock = Clock()
    (held,) = (await opened.enqueue([NewTask("t", "held")], clock.now()))[0]
    (claimed,) = await opened.claim(None, 1, OWNER, clock.now() + 60, clock.now())
    gate = _Gate(opened)
    actor = StoreActor(opened, clock, Ref("queue", Mailbox[Any](math.inf)))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        done = Outcome(claimed.id, OWNER, 1, S.COMPLETED, started_at=clock.now())
        finish = Finish((Outcome(claimed.id, OWNER, 1, S.RUNNING, started_at=clock.now()), done))
        actor.ref.tell_nowait(finish)
        await gate.entered.wait()
        with trio.fail_after(10):  # a guard: before, it waited for the gate for ever
            (new,) = await actor.ref.ask(Submit((NewTask("t", "new"),)))
        assert not finish.reply.is_set, "the outcome is still being written"
        gate.open.set()
        await finish.reply.wait()
        actor.request_stop()
    assert new.created
    stored = await opened.get(held.task.id)
    assert stored is not None and stored.status is S.COMPLETED


def drain(mailbox: Mailbox[Any]) -> list[Any]:
    found = []
    while True:
        try:
            found.append(mailbox.get_nowait())
        except trio.WouldBlock:
            return found


async def test_overlapping_submissions_claim_for_the_same_idle_workers_once(
    opened: Store,
) -> None:
    """On a store whose calls may run at the same time, two batches of new tasks written
    side by side do not both claim for the same standing demand: one idle worker gets one
    task, not one from each batch."""
    if opened.url.startswith("sqlite"):
        pytest.skip("SQLite writes from one thread: its calls never run at the same time")
    if opened.url.startswith("memory"):
        opened.concurrent_calls = True  # type: ignore[attr-defined]  # as PostgreSQL's
    clock = Clock()
    queue: Mailbox[Any] = Mailbox(math.inf)
    first_in = trio.Event()
    second_in = trio.Event()
    real = opened.apply

    async def apply(work: Any, now: float) -> Any:
        if not first_in.is_set():
            first_in.set()
            await second_in.wait()  # held until the second batch is being written too
        else:
            second_in.set()
        return await real(work, now)

    opened.apply = apply  # type: ignore[method-assign]  # the instance hides the method
    actor = StoreActor(opened, clock, Ref("queue", queue))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.ref.tell_nowait(Demand(None, 1, OWNER, 60.0))
        with trio.fail_after(10):
            async with trio.open_nursery() as both:
                both.start_soon(actor.ref.ask, Submit((NewTask("t", "a"),)))
                await first_in.wait()
                both.start_soon(actor.ref.ask, Submit((NewTask("t", "b"),)))
                await trio.lowlevel.checkpoint()  # the second batch is taken in too
                if not second_in.is_set():
                    second_in.set()  # it made no claim, so it went by enqueue: let go
        actor.request_stop()
    told = [task for msg in drain(queue) if isinstance(msg, Claimed) for task in msg.tasks]
    assert len(told) == 1


async def test_a_task_for_another_nodes_queue_costs_no_claim(store: Store) -> None:
    """A node that works only ``default`` and submits work for another queue (say, for
    other nodes) runs no claim for it: not in the commit that stores it (its idle workers
    cannot take it) and not afterwards (its queue is not nudged). A task for its own
    queue still goes to an idle worker in the commit that stores it."""
    starts = Starts()
    recorder = Recorder(store)
    claims: list[Any] = []  # the claims the queue made itself (not within an apply)
    real_claim, real_apply = store.claim, store.apply
    applying = False

    async def apply(work: Work, now: float) -> WorkDone:
        nonlocal applying
        applying = True
        try:
            return await real_apply(work, now)
        finally:
            applying = False

    async def claim(queues: Any, *args: Any) -> list[Any]:
        if not applying:
            claims.append(queues)
        return await real_claim(queues, *args)

    store.apply = apply  # type: ignore[method-assign]  # the instance hides the method
    store.claim = claim  # type: ignore[method-assign]
    async with open_runtime(starts.app, store=store, workers=2, queues=("default",)) as rt:
        await rt.wait((await rt.submit("note", "warm-up")).id)
        recorder.calls.clear()
        claims.clear()
        elsewhere = await rt.submit("note", "for another node", queue="other")
        # Then one for this node: the queue hears of it after any nudge for the first
        # (its mailbox is in order), and claims for a nudge before it reads on.
        mine = await rt.submit("note", "mine")
        assert (await rt.wait(mine.id)).status is S.COMPLETED
        assert recorder.claimed_with(mine.id) == [mine.id]
        assert recorder.claimed_with(elsewhere.id) in (None, [])  # None: not by apply
        others = [work for work, done in recorder.calls if mine.id not in _ids(done)]
        assert all(not work.claims for work in others)
        assert claims == []
        assert (await rt.get(elsewhere.id)).status is S.QUEUED


def _ids(done: WorkDone) -> set[str]:
    return {s.task.id for s in done.submitted}
