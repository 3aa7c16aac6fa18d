"""Nodes kept in memory, for :class:`~trellis_actors.stores.memory.MemoryStore`."""

from __future__ import annotations

from .nodes import FORGET_AFTER, NodeInfo


class MemoryNodes:
    """The nodes half of the store protocol, in a dictionary."""

    def __init__(self) -> None:
        super().__init__()
        self._nodes: dict[str, NodeInfo] = {}

    async def save_node(self, node: NodeInfo) -> None:
        self._nodes[node.id] = node

    async def list_nodes(self) -> list[NodeInfo]:
        return sorted(self._nodes.values(), key=lambda node: node.id)

    async def delete_node(self, node_id: str) -> bool:
        return self._nodes.pop(node_id, None) is not None

    async def prune_nodes(self, now: float) -> int:
        gone = [
            key
            for key, node in self._nodes.items()
            if node.seen_at + FORGET_AFTER * node.heartbeat < now
        ]
        for key in gone:
            del self._nodes[key]
        return len(gone)
