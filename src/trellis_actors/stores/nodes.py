"""Nodes as a store keeps them: one row per running node, written at each heartbeat.

The store only keeps rows. Whether a node is ``up``, ``draining`` or ``lost`` is read off
its row and the reader's clock by :func:`node_state`; a node deletes its own row when it
stops, and any node deletes rows not seen for :data:`FORGET_AFTER` of their heartbeats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .._time import iso, parse_iso

#: A node not seen for this many of its heartbeats is shown ``lost``.
LOST_AFTER = 3
#: ... and its row is deleted after this many.
FORGET_AFTER = 60

NodeState = Literal["up", "draining", "lost"]


@dataclass(frozen=True, slots=True)
class WorkerActivity:
    """One worker of a node, as of the node's last heartbeat."""

    name: str
    current_task: str | None
    current_type: str | None
    tasks_done: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "current_task": self.current_task,
            "current_type": self.current_type,
            "tasks_done": self.tasks_done,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerActivity:
        return cls(
            data["name"], data.get("current_task"), data.get("current_type"), data["tasks_done"]
        )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's heartbeat row. Times are epoch seconds; ``queues`` None: every queue."""

    id: str  # the node's lease owner id: what tasks' ``node`` names
    host: str
    pid: int
    version: str
    started_at: float
    seen_at: float
    heartbeat: float  # seconds between its beats
    workers: int
    busy: int
    processes: int
    queues: tuple[str, ...] | None
    draining: bool
    activity: tuple[WorkerActivity, ...] = ()
    #: Not stored: read off the row by :meth:`seen` (a row as stored says ``up``).
    state: NodeState = "up"

    def seen(self, now: float) -> NodeInfo:
        """This row with its :attr:`state` at ``now``."""
        return replace(self, state=node_state(self, now))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 strings in UTC."""
        return {
            "id": self.id,
            "state": self.state,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "started_at": iso(self.started_at),
            "seen_at": iso(self.seen_at),
            "heartbeat": self.heartbeat,
            "workers": self.workers,
            "busy": self.busy,
            "processes": self.processes,
            "queues": None if self.queues is None else list(self.queues),
            "draining": self.draining,
            "activity": [worker.to_dict() for worker in self.activity],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeInfo:
        """The inverse of :meth:`to_dict` (a node as the HTTP API sends it)."""
        queues = data.get("queues")
        return cls(
            id=data["id"],
            host=data["host"],
            pid=data["pid"],
            version=data["version"],
            started_at=parse_iso(data["started_at"]),
            seen_at=parse_iso(data["seen_at"]),
            heartbeat=data["heartbeat"],
            workers=data["workers"],
            busy=data["busy"],
            processes=data["processes"],
            queues=None if queues is None else tuple(queues),
            draining=data["draining"],
            activity=tuple(WorkerActivity.from_dict(w) for w in data.get("activity", ())),
            state=data.get("state", "up"),
        )


def node_state(node: NodeInfo, now: float) -> NodeState:
    """``lost`` when not seen for :data:`LOST_AFTER` heartbeats, else ``draining`` or ``up``."""
    if now - node.seen_at > LOST_AFTER * node.heartbeat:
        return "lost"
    return "draining" if node.draining else "up"
