"""Login sessions in every store (memory, SQLite, PostgreSQL): the same answers from each."""

from __future__ import annotations

from trellis_actors.stores import Store
from trellis_actors.stores.sessions import Session


def session(key: str = "k" * 64, *, seen_at: float = 100.0, expires_at: float = 1000.0) -> Session:
    return Session(key, "ci", ("operate", "read"), 100.0, seen_at, expires_at)


class TestSessions:
    async def test_round_trip(self, store: Store) -> None:
        await store.save_session(session())
        assert await store.get_session("k" * 64) == session()
        assert await store.get_session("x" * 64) is None

    async def test_save_replaces(self, store: Store) -> None:
        await store.save_session(session())
        await store.save_session(session(seen_at=200.0))
        found = await store.get_session("k" * 64)
        assert found is not None and found.seen_at == 200.0

    async def test_touch(self, store: Store) -> None:
        await store.save_session(session())
        assert await store.touch_session("k" * 64, 150.0)
        assert await store.touch_session("k" * 64, 120.0)  # an older use changes nothing
        found = await store.get_session("k" * 64)
        assert found is not None and found.seen_at == 150.0
        assert not await store.touch_session("x" * 64, 150.0)

    async def test_delete(self, store: Store) -> None:
        await store.save_session(session())
        assert await store.delete_session("k" * 64)
        assert not await store.delete_session("k" * 64)
        assert await store.get_session("k" * 64) is None

    async def test_prune_idle_and_expired(self, store: Store) -> None:
        await store.save_session(session("a" * 64, seen_at=100.0))  # idle
        await store.save_session(session("b" * 64, seen_at=500.0, expires_at=600.0))  # over
        await store.save_session(session("c" * 64, seen_at=500.0))  # alive
        assert await store.prune_sessions(seen_before=400.0, now=600.0) == 2
        assert await store.get_session("c" * 64) is not None
        assert await store.get_session("a" * 64) is None
