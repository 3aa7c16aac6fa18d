"""Nodes in a SQL table: the nodes half of the store protocol, for both SQL stores. The
statements are in ``sql/<dialect>/nodes.sql``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import _sql
from ._sql import Cursor
from .nodes import FORGET_AFTER, NodeInfo, WorkerActivity


class NodeSteps:
    """Node reads and writes inside the caller's transaction (like MemoryNodes)."""

    dialect: str

    def __init__(self) -> None:
        super().__init__()
        self.nodes_q: Mapping[str, str] = _sql.queries(self.dialect, "nodes.sql")

    @staticmethod
    def _decoded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def _node(self, row: Any) -> NodeInfo:
        queues = self._decoded(row["queues"])
        return NodeInfo(
            id=row["id"],
            host=row["host"],
            pid=row["pid"],
            version=row["version"],
            started_at=row["started_at"],
            seen_at=row["seen_at"],
            heartbeat=row["heartbeat"],
            workers=row["workers"],
            busy=row["busy"],
            processes=row["processes"],
            queues=None if queues is None else tuple(queues),
            draining=bool(row["draining"]),
            activity=tuple(WorkerActivity.from_dict(w) for w in self._decoded(row["activity"])),
        )

    def save_node(self, cur: Cursor, node: NodeInfo) -> None:
        row = {
            "id": node.id,
            "host": node.host,
            "pid": node.pid,
            "version": node.version,
            "started_at": node.started_at,
            "seen_at": node.seen_at,
            "heartbeat": node.heartbeat,
            "workers": node.workers,
            "busy": node.busy,
            "processes": node.processes,
            "queues": None if node.queues is None else json.dumps(list(node.queues)),
            "draining": node.draining,
            "activity": json.dumps([worker.to_dict() for worker in node.activity]),
        }
        cur.execute(self.nodes_q["save_node"], row)

    def list_nodes(self, cur: Cursor) -> list[NodeInfo]:
        cur.execute(self.nodes_q["list_nodes"], {})
        return [self._node(row) for row in cur.fetchall()]

    def delete_node(self, cur: Cursor, node_id: str) -> bool:
        cur.execute(self.nodes_q["delete_node"], {"id": node_id})
        return cur.rowcount > 0

    def prune_nodes(self, cur: Cursor, now: float) -> int:
        cur.execute(self.nodes_q["prune_nodes"], {"now": now, "forget_after": FORGET_AFTER})
        return cur.rowcount
