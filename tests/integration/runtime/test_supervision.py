"""Workers under supervision, and what the runtime tells about itself: stats, workers, tree.

A worker crashes for real when the supervisor's idle watchdog (``worker_idle_timeout``)
finds it running a handler that gave no sign of life for too long: the supervisor cancels
it as hung and restarts it, and the queue retries the task it held.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import path, submit_until

from trellis_actors import (
    App,
    Runtime,
    RuntimeNotRunning,
    TaskContext,
    TaskStatus,
    open_runtime,
    testing,
)

S = TaskStatus


class Stuck:
    """An app whose ``stuck`` handler hangs (no liveness signal) on its first ``hangs``
    runs, noting that it was cancelled, then completes."""

    def __init__(self, hangs: int = 1) -> None:
        self.app = App()
        self.runs: list[int] = []
        self.cancelled: list[int] = []

        @self.app.task(name="stuck")
        async def stuck(ctx: TaskContext, payload: Any) -> str:
            self.runs.append(ctx.attempt)
            if len(self.runs) <= hangs:
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    self.cancelled.append(ctx.attempt)
                    raise
            return "unstuck"


class TestWorkerCrash:
    async def test_hung_worker_is_restarted_and_its_task_retried(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A worker killed mid-task is restarted; its task is retried and completes."""
        stuck = Stuck()
        async with open_runtime(stuck.app, workers=1, worker_idle_timeout=5) as rt:
            start = trio.current_time()
            task = await rt.submit("stuck")
            done = await rt.wait(task.id, timeout=600)
            elapsed = trio.current_time() - start
            events = await rt.events(task.id)
            worker = rt.snapshot().find("worker-1")
            after = await rt.wait((await rt.submit("echo", "alive")).id)
        assert (done.status, done.attempt, done.result) == (S.COMPLETED, 2, "unstuck")
        assert (stuck.runs, stuck.cancelled) == ([1, 2], [1])
        assert 5 < elapsed < 5 + 5 / 4 + 1  # the watchdog looks every quarter timeout
        assert path(events) == [
            "pending", "queued", "running", "retrying", "queued", "running", "completed",
        ]  # fmt: skip
        retrying = events[3]
        assert (retrying.attempt, retrying.detail) == (1, "worker-1 crashed while running the task")
        assert worker is not None
        assert (worker.state, worker.restarts) == ("running", 1)
        assert worker.last_error is not None and "ActorHung" in worker.last_error
        assert after.result == "alive"

    async def test_a_task_that_always_hangs_runs_out_of_attempts(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Each crash costs an attempt: a handler that always hangs ends dead, not looping."""
        stuck = Stuck(hangs=1000)
        assert stuck.app.get("stuck").max_attempts == 3
        async with open_runtime(stuck.app, workers=2, worker_idle_timeout=4) as rt:
            done = await rt.wait((await rt.submit("stuck")).id, timeout=600)
            events = await rt.events(done.id)
        assert (done.status, done.attempt, stuck.runs) == (S.DEAD, 3, [1, 2, 3])
        assert done.error is not None and done.error.type == "WorkerCrashed"
        assert path(events)[-3:] == ["running", "failed", "dead"]

    async def test_other_tasks_in_the_crashed_workers_hands_are_not_lost(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Unstarted tasks in a crashed worker's hands run later, their attempts uncounted."""
        stuck = Stuck()
        ran: list[int] = []

        @stuck.app.task(name="count")
        async def count(ctx: TaskContext, payload: int) -> int:
            ran.append(payload)
            return ctx.attempt

        async with open_runtime(stuck.app, workers=0, worker_idle_timeout=5) as rt:
            first = await rt.submit("stuck", priority=1)
            others = [await rt.submit("count", i) for i in range(3)]
            await rt.resize(1)  # takes all four at once: "stuck" first
            await testing.run_until_idle(rt, timeout=600)
            done = [await rt.get(t.id) for t in (first, *others)]
        assert [t.status for t in done] == [S.COMPLETED] * 4
        assert [t.attempt for t in done] == [2, 1, 1, 1]
        assert sorted(ran) == [0, 1, 2]

    async def test_handlers_that_show_signs_of_life_are_left_alone(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Long work that reports progress or calls ctx.alive() is not mistaken for a hang."""
        app = App()

        @app.task(name="pulse")
        async def pulse(ctx: TaskContext, payload: Any) -> str:
            for _ in range(20):
                await trio.sleep(3)
                ctx.alive()
            return "done"

        async with open_runtime(app, workers=2, worker_idle_timeout=5) as rt:
            slept = await rt.submit("sleep", {"seconds": 40})  # progress every 4 s
            pulsed = await rt.submit("pulse")
            done = [await rt.wait(slept.id), await rt.wait(pulsed.id)]
            restarts = [c.restarts for c in rt.snapshot().walk() if c.kind == "worker"]
        assert [(t.status, t.attempt) for t in done] == [(S.COMPLETED, 1)] * 2
        assert restarts == [0, 0]

    async def test_idle_workers_are_left_alone(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Workers waiting for work are idle, not hung, however long they wait."""
        async with open_runtime(App(), workers=3, worker_idle_timeout=2) as rt:
            task = await rt.submit("echo", 1, delay=300)
            await rt.wait(task.id)
            restarts = [c.restarts for c in rt.snapshot().walk() if c.kind == "worker"]
        assert restarts == [0, 0, 0]


class TestIntrospection:
    async def test_stats_and_workers(self, autojump_clock: trio.testing.MockClock) -> None:
        """stats() and workers() show the node, queue depths and who runs what."""
        stuck = Stuck()
        async with open_runtime(stuck.app, workers=2, node="node-a") as rt:
            for i in range(3):
                await rt.wait((await rt.submit("echo", i)).id)
            await rt.submit("echo", 9, delay=60, queue="later")
            blocked = await submit_until(rt, S.RUNNING, "stuck")
            stats = await rt.stats()
            workers = await rt.workers()
            await rt.cancel(blocked.id)
        assert stats["node"] == "node-a" and rt.node == "node-a"
        assert (stats["store"], stats["draining"]) == ("memory://", False)
        assert stats["queues"] == {
            "default": {"completed": 3, "running": 1},
            "later": {"pending": 1},
        }
        assert stats["workers"] == {"configured": 2, "busy": 1, "tasks_done": 3}
        assert sorted(w.name for w in workers) == ["worker-1", "worker-2"]
        (busy,) = [w for w in workers if w.current_task is not None]
        assert (busy.current_task, busy.current_type) == (blocked.id, "stuck")
        assert json.dumps(stats)

    async def test_snapshot_tree(self, autojump_clock: trio.testing.MockClock) -> None:
        """snapshot() shows the whole supervision tree, each actor running."""
        async with open_runtime(App(), workers=3) as rt:
            await rt.wait((await rt.submit("echo", 1)).id)
            tree = rt.snapshot()
        # No process pool: the app has no process handlers.
        assert [c.name for c in tree.children] == [
            "registry", "store", "feed", "queue", "janitor", "scheduler", "workers", "node",
        ]  # fmt: skip
        kinds = {c.name: c.kind for c in tree.walk()}
        assert kinds["store"] == "store" and kinds["queue"] == "queue"
        assert kinds["workers"] == "supervisor" and kinds["worker-1"] == "worker"
        pool = tree.find("workers")
        assert pool is not None and pool.strategy == "one_for_one"
        assert [c.name for c in pool.children] == ["worker-1", "worker-2", "worker-3"]
        assert all(c.state == "running" and c.restarts == 0 for c in tree.walk()[1:])
        store = tree.find("store")
        assert store is not None and store.mailbox is not None and store.mailbox.handled > 0
        assert json.loads(json.dumps(tree.to_dict()))["name"] == tree.name

    async def test_snapshot_needs_a_running_runtime(self) -> None:
        """Outside its block the runtime has no tree to show."""
        with pytest.raises(RuntimeNotRunning, match="the runtime is not running"):
            Runtime(App()).snapshot()

    async def test_the_tree_is_named_before_it_runs(self) -> None:
        """The actors' refs exist by role as soon as the runtime is made."""
        rt = Runtime(App(), workers=2)
        assert [ref.name for ref in (rt.tree.registry, rt.tree.store, rt.tree.queue)] == [
            "registry",
            "store",
            "queue",
        ]
        assert (rt.tree.scheduler.name, rt.tree.janitor.name) == ("scheduler", "janitor")
        assert rt.tree.workers.name == "workers" and rt.tree.feed.name == "feed"

    @pytest.mark.parametrize(
        "call",
        [
            lambda rt: rt.submit("echo", {}),
            lambda rt: rt.get("x"),
            lambda rt: rt.list(),
            lambda rt: rt.cancel("x"),
            lambda rt: rt.counts(),
            lambda rt: rt.workers(),
            lambda rt: rt.list_schedules(),
            lambda rt: rt.resize(2),
            lambda rt: rt.wait("x"),
        ],
    )
    async def test_the_facade_needs_a_running_runtime(self, call: Any) -> None:
        """Each facade method of a runtime that is not running says so, before and after."""
        rt = Runtime(App())
        with pytest.raises(RuntimeNotRunning, match="use `async with open_runtime"):
            await call(rt)
        async with trio.open_nursery() as nursery:
            await nursery.start(rt.run)
            await rt.shutdown()
        with pytest.raises(RuntimeNotRunning):
            await call(rt)


async def test_a_failed_claim_leaves_workers_waiting_for_the_next_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The store fails a claim (it crashes and is restarted): the queue keeps its waiting
    workers and claims again at its next poll, so the task starts a poll later, not after
    the workers' own long timeout, and the queue is not restarted. (The task is delayed:
    one due at once would be claimed in the commit that stores it.)"""
    from trellis_actors.stores import MemoryStore

    app = App()

    @app.task
    async def noop(ctx: TaskContext, payload: Any) -> None:
        return None

    store = MemoryStore()
    real_claim = store.claim
    claims: list[int] = []

    async def claim(*args: Any, **kwargs: Any) -> Any:
        claims.append(len(claims))
        if len(claims) == 2:  # the first claim after the submission
            raise OSError("disk I/O error")
        return await real_claim(*args, **kwargs)

    store.claim = claim  # type: ignore[method-assign]  # the instance hides the method
    async with (
        open_runtime(app, store=store, workers=2, poll_interval=1.0) as rt,
        rt.subscribe() as events,  # a subscription outlives the store's restart
    ):
        task = await rt.submit("noop", None, delay=0.5)
        with trio.fail_after(30):
            async for move in events:
                if move.task.status is S.COMPLETED:
                    done = move.task
                    break
        tree = rt.snapshot()
    assert done.status is S.COMPLETED
    assert len(claims) >= 3
    assert done.started_at is not None and done.started_at - task.created_at <= 0.5 + 1.0 + 0.1
    restarts = {name: tree.find(name).restarts for name in ("store", "queue")}  # type: ignore[union-attr]
    assert restarts == {"store": 1, "queue": 0}
