"""The listing's search filters on every store: id prefix, idempotency key, schedule and
creation time, alone, together and across pages."""

from __future__ import annotations

from typing import Any

from tests.integration.stores.kit import NOW, S

from trellis_actors.lifecycle import Task
from trellis_actors.stores import NewTask, Store, TaskFilter


async def add(store: Store, now: float = NOW, **options: Any) -> Task:
    options.setdefault("type", "echo")
    options.setdefault("payload", None)
    (submitted,), _ = await store.enqueue([NewTask(**options)], now)
    return submitted.task


async def ids(store: Store, limit: int = 10, **filter: Any) -> list[str]:
    page = await store.list_tasks(TaskFilter(**filter), limit, None)
    return [task.id for task in page.items]


class TestSearch:
    async def test_id_prefix(self, store: Store) -> None:
        """A prefix finds the ids that start with it, whatever its length; a whole id
        finds its task."""
        a = await add(store)
        b = await add(store)
        assert await ids(store, id_prefix=a.id) == [a.id]
        assert await ids(store, id_prefix=b.id) == [b.id]
        shared = next(
            n for n in range(36, 0, -1) if a.id[:n] == b.id[:n]
        )  # UUIDv7: a batch shares its time prefix
        assert await ids(store, id_prefix=a.id[:shared]) == [b.id, a.id]
        assert await ids(store, id_prefix=a.id[:9]) == [b.id, a.id]  # across the dash
        other = "f" if a.id[0] != "f" else "0"
        assert await ids(store, id_prefix=other) == []

    async def test_idempotency_key(self, store: Store) -> None:
        """The key finds its one task, and the other filters still apply to it."""
        keyed = await add(store, idempotency_key="order-17", queue="mail")
        await add(store, idempotency_key="order-18")
        await add(store)
        assert await ids(store, idempotency_key="order-17") == [keyed.id]
        assert await ids(store, idempotency_key="order-17", queue="mail") == [keyed.id]
        assert await ids(store, idempotency_key="order-17", status=S.QUEUED) == [keyed.id]
        assert await ids(store, idempotency_key="order-17", type="other") == []
        assert await ids(store, idempotency_key="order-17", status=S.DEAD) == []
        assert await ids(store, idempotency_key="nope") == []

    async def test_schedule_id(self, store: Store) -> None:
        """The tasks a schedule fired, newest first, with any other filter."""
        first = await add(store, schedule_id="sched-1")
        await add(store, schedule_id="sched-2")
        await add(store)
        second = await add(store, schedule_id="sched-1", type="other")
        assert await ids(store, schedule_id="sched-1") == [second.id, first.id]
        assert await ids(store, schedule_id="sched-1", type="other") == [second.id]
        assert await ids(store, schedule_id="sched-1", status=S.QUEUED) == [second.id, first.id]

    async def test_created_between(self, store: Store) -> None:
        """created_after is inclusive, created_before exclusive."""
        early = await add(store, now=NOW)
        middle = await add(store, now=NOW + 10)
        late = await add(store, now=NOW + 20)
        assert await ids(store, created_after=NOW + 10) == [late.id, middle.id]
        assert await ids(store, created_before=NOW + 10) == [early.id]
        assert await ids(store, created_after=NOW + 5, created_before=NOW + 20) == [middle.id]
        assert await ids(store, created_after=NOW + 5, queue="default") == [late.id, middle.id]
        assert await ids(store, created_after=NOW + 5, status=S.QUEUED) == [late.id, middle.id]
        assert await ids(store, created_after=NOW + 30) == []

    async def test_pages_of_a_search(self, store: Store) -> None:
        """A filtered listing pages without gaps or repeats."""
        fired = [await add(store, schedule_id="s") for _ in range(5)]
        for _ in range(3):
            await add(store)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await store.list_tasks(TaskFilter(schedule_id="s"), 2, cursor)
            seen += [task.id for task in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [task.id for task in reversed(fired)]
