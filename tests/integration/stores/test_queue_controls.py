"""Queue pause and per-type limits: every store (memory, SQLite, PostgreSQL) keeps them
in its claims, and the SQL stores keep them for every store object on the database."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.stores.kit import LEASE, NOW, S, start

from trellis_actors.decisions import TypeLimit
from trellis_actors.lifecycle import Task
from trellis_actors.stores import NewTask, Outcome, Store, open_store


async def add(store: Store, count: int = 1, now: float = NOW, **options: Any) -> None:
    options.setdefault("type", "echo")
    options.setdefault("payload", None)
    await store.enqueue([NewTask(**options) for _ in range(count)], now)


async def claim(
    store: Store,
    limit: int,
    now: float = NOW,
    owner: str = "w1",
    queues: list[str] | None = None,
) -> list[Task]:
    return await store.claim(queues, limit, owner, now + LEASE, now)


class TestPause:
    async def test_a_paused_queue_is_not_claimed(self, store: Store) -> None:
        """Claims of every queue and of that queue alone skip a paused queue; resumed, its
        tasks are claimed again."""
        await add(store, 2, queue="a")
        await add(store, 1, queue="b")
        state = await store.pause_queue("a", True, NOW)
        assert (state.name, state.paused, state.paused_at) == ("a", True, NOW)
        assert [t.queue for t in await claim(store, 10)] == ["b"]
        assert await claim(store, 10, queues=["a"]) == []
        await store.pause_queue("a", False, NOW + 1)
        assert [t.queue for t in await claim(store, 10, queues=["a"])] == ["a", "a"]

    async def test_tasks_held_before_the_pause_run_on(self, store: Store) -> None:
        """A task claimed before the pause is started and finished as usual."""
        await add(store, 1, queue="a")
        (task,) = await claim(store, 1)
        await store.pause_queue("a", True, NOW)
        (running,) = await start(store, [task], NOW + 1)
        assert running.status is S.RUNNING

    async def test_queue_states_list_counts_and_paused(self, store: Store) -> None:
        """Queues with tasks and paused queues without any are listed, by name."""
        await add(store, 2, queue="b")
        await store.pause_queue("a", True, NOW)
        await store.pause_queue("a", True, NOW + 5)  # again: the first time is kept
        states = await store.queue_states()
        assert [(q.name, q.paused, q.paused_at) for q in states] == [
            ("a", True, NOW),
            ("b", False, None),
        ]
        assert states[1].counts == {"queued": 2}

    async def test_a_pause_persists(self, store_url: str) -> None:
        """Paused is stored: a store opened afresh on the same database sees it."""
        if store_url.startswith("memory"):
            pytest.skip("nothing survives the memory store")
        first = open_store(store_url)
        await first.open()
        await first.pause_queue("a", True, NOW)
        await first.close()
        again = open_store(store_url)
        await again.open()
        try:
            await add(again, 1, queue="a")
            assert [(q.name, q.paused) for q in await again.queue_states()] == [("a", True)]
            assert await claim(again, 1) == []
        finally:
            await again.close()


class TestLimits:
    async def test_concurrency_counts_held_tasks_of_every_owner(self, store: Store) -> None:
        """At most ``concurrency`` held at once, whoever holds them; an ending frees one."""
        store.set_limits({"echo": TypeLimit(concurrency=2)})
        await add(store, 5)
        first = await claim(store, 5, owner="n1")
        assert len(first) == 2
        assert await claim(store, 5, owner="n2") == []
        running = await start(store, first, NOW + 1)
        done = Outcome(running[0].id, "n1", 1, S.COMPLETED)
        await store.finish([done], NOW + 2)
        assert len(await claim(store, 5, NOW + 2, owner="n2")) == 1

    async def test_other_types_fill_the_claim(self, store: Store) -> None:
        """A limited type at its limit leaves the rest of the claim to other types, even
        when its tasks come first."""
        store.set_limits({"slow": TypeLimit(concurrency=1)})
        await add(store, 4, type="slow", priority=5)
        await add(store, 3, type="echo")
        claimed = await claim(store, 10)
        assert sorted(t.type for t in claimed) == ["echo", "echo", "echo", "slow"]

    async def test_rate_counts_starts_in_the_window(self, store: Store) -> None:
        """``rate`` starts per ``per`` seconds: claimed tasks count from the claim, started
        ones until ``per`` after their start; ``held_until`` says when a slot frees."""
        store.set_limits({"echo": TypeLimit(rate=3, per=1.0)})
        await add(store, 10)
        first = await claim(store, 10)
        assert len(first) == 3
        assert store.held_until == NOW + 1.0  # unstarted: a window from now at the latest
        await start(store, first, NOW + 0.25)
        assert await claim(store, 10, NOW + 0.5) == []
        assert store.held_until == NOW + 1.25  # when the first start leaves the window
        assert await claim(store, 10, NOW + 1.2) == []
        assert len(await claim(store, 10, NOW + 1.25)) == 3

    async def test_a_claim_given_back_unstarted_is_refunded(self, store: Store) -> None:
        """Released before it started, a claim no longer counts against the rate."""
        store.set_limits({"echo": TypeLimit(rate=2, per=60.0)})
        await add(store, 4)
        first = await claim(store, 4)
        await store.release([t.id for t in first], "w1", NOW + 1)
        assert len(await claim(store, 4, NOW + 2)) == 2


@pytest.mark.postgres
async def test_limits_hold_across_stores_on_one_database(pg_url: str) -> None:
    """Two store objects (two nodes) on one PostgreSQL database share the limits."""
    nodes = [open_store(pg_url), open_store(pg_url)]
    for node in nodes:
        await node.open()
        node.set_limits({"echo": TypeLimit(concurrency=3, rate=4, per=1.0)})
    try:
        await add(nodes[0], 10)
        a = await claim(nodes[0], 2, owner="n1")
        b = await claim(nodes[1], 10, owner="n2")
        assert (len(a), len(b)) == (2, 1)  # concurrency 3 in all
        a = await start(nodes[0], a, NOW)
        b = await start(nodes[1], b, NOW)
        await nodes[0].finish([_done(t) for t in a + b], NOW + 0.1)  # b is n2's: ignored
        await nodes[1].finish([_done(t) for t in b], NOW + 0.1)
        c = await claim(nodes[1], 10, NOW + 0.2, owner="n2")
        assert len(c) == 1  # 3 starts in the last second: the rate allows one more
        await nodes[0].pause_queue("default", True, NOW)
        assert await claim(nodes[1], 10, NOW + 5, owner="n2") == []
    finally:
        for node in nodes:
            await node.close()


def _done(task: Task) -> Outcome:
    return Outcome(task.id, task.lease_owner, task.attempt, S.COMPLETED)
