"""The nodes registry in every store (memory, SQLite, PostgreSQL): the same answers."""

from __future__ import annotations

from trellis_actors.stores import Store
from trellis_actors.stores.nodes import FORGET_AFTER, NodeInfo, WorkerActivity


def node(node_id: str = "host:1:abc", *, seen_at: float = 100.0, **fields: object) -> NodeInfo:
    values: dict[str, object] = {
        "host": "host",
        "pid": 1,
        "version": "0.1.0",
        "started_at": 50.0,
        "heartbeat": 5.0,
        "workers": 2,
        "busy": 1,
        "processes": 0,
        "queues": None,
        "draining": False,
        "activity": (
            WorkerActivity("worker-1", "01a2", "echo", 3),
            WorkerActivity("worker-2", None, None, 0),
        ),
    }
    values.update(fields)
    return NodeInfo(id=node_id, seen_at=seen_at, **values)  # type: ignore[arg-type]


class TestNodes:
    async def test_round_trip(self, store: Store) -> None:
        """A row comes back as saved, queues and workers included."""
        await store.save_node(node())
        await store.save_node(node("b", queues=("mail", "reports"), draining=True))
        assert await store.list_nodes() == [
            node("b", queues=("mail", "reports"), draining=True),
            node(),
        ]

    async def test_save_replaces(self, store: Store) -> None:
        """A heartbeat replaces the node's row."""
        await store.save_node(node())
        await store.save_node(node(seen_at=105.0, busy=0, activity=()))
        assert await store.list_nodes() == [node(seen_at=105.0, busy=0, activity=())]

    async def test_delete(self, store: Store) -> None:
        await store.save_node(node())
        assert await store.delete_node("host:1:abc")
        assert not await store.delete_node("host:1:abc")
        assert await store.list_nodes() == []

    async def test_prune_after_sixty_heartbeats(self, store: Store) -> None:
        """Rows not seen for FORGET_AFTER of their own heartbeats go; others stay."""
        await store.save_node(node("old", seen_at=100.0))
        await store.save_node(node("slow", seen_at=100.0, heartbeat=60.0))
        await store.save_node(node("new", seen_at=390.0))
        assert await store.prune_nodes(100.0 + FORGET_AFTER * 5.0 + 1) == 1
        assert [n.id for n in await store.list_nodes()] == ["new", "slow"]
