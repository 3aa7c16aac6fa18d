"""The nodes registry: every node writes a heartbeat row; dead nodes show lost, then go;
each task records the node and worker of the attempt that ran it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trellis_actors import App, Runtime, TaskStatus
from trellis_actors.stores.memory import MemoryStore
from trellis_actors.stores.nodes import FORGET_AFTER, LOST_AFTER

Started = tuple[Runtime, trio.CancelScope]
Start = Callable[..., Awaitable[Started]]


@asynccontextmanager
async def cluster() -> AsyncIterator[Start]:
    """``start(store, **config)`` starts a runtime and gives it with a cancel scope whose
    cancel kills it (no goodbye); the others are shut down on the way out."""
    stopping: list[Started] = []
    async with trio.open_nursery() as nursery:

        async def start(
            store: str | MemoryStore, **config: object
        ) -> tuple[Runtime, trio.CancelScope]:
            runtime = Runtime(App(), store=store, **config)
            scope = trio.CancelScope()

            async def run(*, task_status: trio.TaskStatus[None]) -> None:
                with scope:
                    await runtime.run(task_status=task_status)

            await nursery.start(run)
            stopping.append((runtime, scope))
            return runtime, scope

        try:
            yield start
        finally:
            with trio.CancelScope(shield=True):
                for runtime, scope in reversed(stopping):
                    if not scope.cancel_called:
                        await runtime.shutdown()


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    with trio.move_on_after(timeout):
        # Polling: the other nodes' rows are only in the database.
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.05)
        return
    raise AssertionError(f"gave up after {timeout}s waiting for {what}")


class TestMemory:
    async def test_the_node_lists_itself(self, autojump_clock: trio.testing.MockClock) -> None:
        """A running node is in the registry with its fields, and leaves it when it stops."""
        store = MemoryStore()
        async with cluster() as start:
            rt, _ = await start(store, workers=3, queues=("a", "b"))
            (node,) = await rt.nodes()
            assert (node.id, node.state, node.workers, node.busy) == (rt.node, "up", 3, 0)
            assert node.queues == ("a", "b") and node.pid > 0 and node.host
            assert [w.name for w in node.activity] == ["worker-1", "worker-2", "worker-3"]
            assert node.to_dict()["state"] == "up"
        assert await store.list_nodes() == []

    async def test_a_killed_node_shows_lost_then_goes(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A node that dies without a word is lost after three heartbeats, and its row is
        deleted (by a node still running) after sixty."""
        store = MemoryStore()
        async with cluster() as start:
            first, _ = await start(store, heartbeat=5.0)
            second, kill = await start(store, heartbeat=5.0)
            assert {n.id for n in await first.nodes()} == {first.node, second.node}
            kill.cancel()
            await trio.sleep(LOST_AFTER * 5.0 + 5.1)
            states = {n.id: n.state for n in await first.nodes()}
            assert states == {first.node: "up", second.node: "lost"}
            await trio.sleep(FORGET_AFTER * 5.0)
            assert [n.id for n in await first.nodes()] == [first.node]

    async def test_draining_shows_at_once(self, autojump_clock: trio.testing.MockClock) -> None:
        """A node that starts draining says so in its row without waiting for a beat."""
        async with cluster() as start:
            rt, _ = await start(MemoryStore(), heartbeat=60.0)
            rt.mark_draining()
            await trio.sleep(0.1)
            (node,) = await rt.nodes()
            assert (node.draining, node.state) == (True, "draining")

    async def test_no_heartbeat_no_row(self, autojump_clock: trio.testing.MockClock) -> None:
        """heartbeat=None keeps the node out of the registry."""
        async with cluster() as start:
            rt, _ = await start("memory://", heartbeat=None)
            assert await rt.nodes() == []

    async def test_task_records_node_and_worker(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The task and its running and finishing events name the node and the worker."""
        async with cluster() as start:
            rt, _ = await start("memory://", workers=1)
            done = await rt.wait(await rt.submit("echo", 1), timeout=10)
            events = await rt.events(done.id)
        assert (done.node, done.worker) == (rt.node, "worker-1")
        where = {(e.to_status, e.node, e.worker) for e in events}
        assert where == {
            (TaskStatus.PENDING, None, None),
            (TaskStatus.QUEUED, None, None),
            (TaskStatus.RUNNING, rt.node, "worker-1"),
            (TaskStatus.COMPLETED, rt.node, "worker-1"),
        }
        assert done.to_dict()["node"] == rt.node and done.to_dict()["worker"] == "worker-1"


@pytest.mark.postgres
class TestPostgres:
    async def test_every_node_lists_all_and_the_worker_node_runs(self, pg_url: str) -> None:
        """Three nodes on one database each list all three; a task submitted on a node
        without workers records the worker node and worker that ran it."""
        async with cluster() as start:
            api, _ = await start(pg_url, workers=0, heartbeat=0.2)
            worker, _ = await start(pg_url, workers=2, heartbeat=0.2)
            third, _ = await start(pg_url, workers=1, heartbeat=0.2, queues=("other",))
            ids = {api.node, worker.node, third.node}

            async def all_listed() -> bool:
                return all([await _listed(rt, ids) for rt in (api, worker, third)])

            await until("every node listed everywhere", all_listed)
            nodes = {n.id: n for n in await api.nodes()}
            assert nodes[worker.node].workers == 2 and nodes[api.node].workers == 0
            assert nodes[third.node].queues == ("other",)
            assert nodes[worker.node].queues is None
            assert {n.state for n in nodes.values()} == {"up"}
            done = await api.wait(await api.submit("echo", 7), timeout=20)
            events = await api.events(done.id)
        assert done.status is TaskStatus.COMPLETED
        assert done.node == worker.node and done.worker in ("worker-1", "worker-2")
        running_event = next(e for e in events if e.to_status is TaskStatus.RUNNING)
        finished = events[-1]
        assert (running_event.node, running_event.worker) == (done.node, done.worker)
        assert (finished.to_status, finished.node, finished.worker) == (
            TaskStatus.COMPLETED,
            done.node,
            done.worker,
        )

    async def test_a_killed_node_ages_out(self, pg_url: str) -> None:
        """A node killed without a goodbye shows lost on the others after three beats."""
        async with cluster() as start:
            first, _ = await start(pg_url, heartbeat=0.1)
            second, kill = await start(pg_url, heartbeat=0.1)
            await until("both listed", lambda: _listed(first, {first.node, second.node}))
            kill.cancel()

            async def lost() -> bool:
                states = {n.id: n.state for n in await first.nodes()}
                return states.get(second.node) == "lost"

            await until("the killed node lost", lost)
            assert {n.id: n.state for n in await first.nodes()}[first.node] == "up"


async def _listed(rt: Runtime, ids: set[str]) -> bool:
    return {n.id for n in await rt.nodes()} == ids
