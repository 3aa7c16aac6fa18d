"""Queue pause and per-type limits at work: within one node (memory store, virtual time),
and across two nodes on one PostgreSQL database (two runtimes in one trio program)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from trellis_actors import App, Runtime, TaskContext, TaskStatus, open_runtime
from trellis_actors.stores.postgres import PostgresStore

S = TaskStatus


def busiest_window(starts: list[float], width: float = 1.0) -> int:
    """The most starts in any ``width`` seconds: [s, s + width) from each start s."""
    starts = sorted(starts)
    return max((sum(1 for t in starts if s <= t < s + width) for s in starts), default=0)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans (start, end) open at one time."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    now = peak = 0
    for _, step in edges:  # an end sorts before a start at the same time
        now += step
        peak = max(peak, now)
    return peak


async def until(done: Callable[[], Any], timeout: float = 30.0, step: float = 0.02) -> None:
    """Wait for ``done()`` (or what it returns, awaited) to hold, looking every ``step``."""
    with trio.fail_after(timeout):
        while True:
            answer = done()
            if inspect.isawaitable(answer):
                answer = await answer
            if answer:
                return
            await trio.sleep(step)


async def finished(rt: Runtime, total: int) -> bool:
    return (await rt.counts()).total(S.COMPLETED) >= total


async def starts_of(rt: Runtime, kind: str) -> list[float]:
    page = await rt.list(type=kind, limit=1000)
    return [task.started_at for task in page.items if task.started_at is not None]


class TestOneNode:
    async def test_rate_limit(self, autojump_clock: trio.testing.MockClock) -> None:
        """5 starts a second at most, and the backlog goes as fast as that allows: the
        queue claims again when the window frees a slot, not at its (60 s) poll."""
        app = App()

        @app.task(name="noop", rate_limit="5/s")
        async def noop(ctx: TaskContext, payload: Any) -> None:
            pass

        async with open_runtime(app, workers=4, poll_interval=60) as rt:
            begun = trio.current_time()
            tasks = await rt.submit_many([{"type": "noop"} for _ in range(20)])
            for task in tasks:
                await rt.wait(task.id, timeout=3600)
            elapsed = trio.current_time() - begun
            starts = await starts_of(rt, "noop")
        assert len(starts) == 20
        assert busiest_window(starts) == 5
        assert 3.0 <= elapsed < 4.5  # windows at 0, 1, 2 and 3 s

    async def test_pause_and_resume(self, autojump_clock: trio.testing.MockClock) -> None:
        """A paused queue's task waits while workers idle; resumed, it runs at once."""
        app = App()

        @app.task(name="noop")
        async def noop(ctx: TaskContext, payload: Any) -> None:
            pass

        async with open_runtime(app, workers=2) as rt:
            paused = await rt.pause_queue("default")
            assert paused.paused
            task = await rt.submit("noop")
            await trio.sleep(30)  # virtual: thirty polls
            assert (await rt.get(task.id)).status is S.QUEUED
            assert [(q.name, q.paused) for q in await rt.queues()] == [("default", True)]
            await rt.resume_queue("default")
            done = await rt.wait(task.id, timeout=1)
        assert done.status is S.COMPLETED


class CountingStore(PostgresStore):
    """A PostgreSQL store that counts the claims its node makes."""

    claims = 0

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.claims += 1
        return await super().claim(*args, **kwargs)

    async def apply(self, work: Any, now: float) -> Any:
        self.claims += len(work.claims)
        return await super().apply(work, now)


def recording_app(spans: list[tuple[float, float]], **options: Any) -> App:
    app = App()

    @app.task(name="limited", **options)
    async def limited(ctx: TaskContext, payload: Any) -> None:
        begun = trio.current_time()
        await trio.sleep(payload or 0)
        spans.append((begun, trio.current_time()))

    return app


@pytest.mark.postgres
class TestTwoNodes:
    async def test_rate_limit_across_nodes(self, pg_url: str) -> None:
        """rate_limit="5/s", 2 nodes of 4 workers, 40 no-op tasks: no second (by the
        stored started_at) sees more than 5 starts, and the backlog ends in about 8 s."""
        spans: list[tuple[float, float]] = []
        app = recording_app(spans, rate_limit="5/s")
        async with (
            open_runtime(app, store=pg_url, workers=4, node="a", poll_interval=30) as a,
            open_runtime(app, store=pg_url, workers=4, node="b", poll_interval=30) as b,
        ):
            await a.submit_many([{"type": "limited"} for _ in range(20)])
            await b.submit_many([{"type": "limited"} for _ in range(20)])
            await until(lambda: finished(a, 40))
            starts = await starts_of(a, "limited")
            nodes = {t.lease_owner for t in (await a.list(limit=1000)).items}
        assert len(starts) == 40
        assert busiest_window(starts) <= 5
        assert max(starts) - min(starts) < 9.0  # 8 windows: each claimed as it opened
        assert nodes == {None}  # every lease given back at the end

    async def test_concurrency_across_nodes(self, pg_url: str) -> None:
        """concurrency=2 holds for the two nodes together, and is reached."""
        spans: list[tuple[float, float]] = []
        app = recording_app(spans, concurrency=2)
        async with (
            open_runtime(app, store=pg_url, workers=3, node="a", poll_interval=0.1) as a,
            open_runtime(app, store=pg_url, workers=3, node="b", poll_interval=0.1) as b,
        ):
            await a.submit_many([{"type": "limited", "payload": 0.2} for _ in range(6)])
            await b.submit_many([{"type": "limited", "payload": 0.2} for _ in range(6)])
            await until(lambda: finished(a, 12))
        assert len(spans) == 12
        assert most_at_once(spans) == 2

    async def test_pause_holds_on_both_nodes(self, pg_url: str) -> None:
        """Paused on one node, a queue's task stays queued while both nodes claim (and
        find nothing) with idle workers; resumed on the other, it runs."""
        stores = [CountingStore(pg_url), CountingStore(pg_url)]
        app = recording_app([])
        async with (
            open_runtime(app, store=stores[0], workers=2, node="a", poll_interval=0.05) as a,
            open_runtime(app, store=stores[1], workers=2, node="b", poll_interval=0.05) as b,
        ):
            await a.pause_queue("default")
            before = [store.claims for store in stores]
            task = await b.submit("limited")
            await until(lambda: all(s.claims >= n + 5 for s, n in zip(stores, before, strict=True)))
            held = await a.get(task.id)
            assert (held.status, held.lease_owner) == (S.QUEUED, None)
            assert [q.paused for q in await b.queues()] == [True]
            await b.resume_queue("default")
            await until(lambda: finished(a, 1))

    async def test_pause_survives_a_restart(self, pg_url: str) -> None:
        """A queue paused by a node that then stops stays paused for the next one."""
        app = recording_app([])
        async with open_runtime(app, store=pg_url, workers=1, node="a") as a:
            await a.pause_queue("default")
        store = CountingStore(pg_url)
        async with open_runtime(app, store=store, workers=2, node="b", poll_interval=0.05) as b:
            task = await b.submit("limited")
            await until(lambda: store.claims >= 5)
            assert (await b.get(task.id)).status is S.QUEUED
            assert [(q.name, q.paused) for q in await b.queues()] == [("default", True)]
            await b.resume_queue("default")
            assert (await b.wait(task.id, timeout=10)).status is S.COMPLETED
