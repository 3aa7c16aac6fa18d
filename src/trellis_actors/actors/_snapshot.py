"""A point-in-time view of the supervision tree."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._mailbox import MailboxStatistics


@dataclass(frozen=True, slots=True)
class ActorSnapshot:
    """One actor in the tree, with its children."""

    name: str
    kind: str
    state: str
    restarts: int
    last_error: str | None
    last_error_at: float | None  # wall-clock seconds since the epoch
    mailbox: MailboxStatistics | None
    uptime: float | None  # seconds since the current incarnation started
    children: tuple[ActorSnapshot, ...] = ()
    strategy: str | None = None  # supervisors only
    next_restart_in: float | None = None  # when backing off
    details: dict[str, Any] | None = None  # what the actor tells of itself (Actor.details())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        _finite(data)
        return data

    def walk(self) -> list[ActorSnapshot]:
        """This snapshot and every descendant, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def find(self, name: str) -> ActorSnapshot | None:
        return next((snap for snap in self.walk() if snap.name == name), None)


def _finite(data: dict[str, Any]) -> None:
    """JSON has no infinity: an unbounded mailbox's capacity becomes ``None``."""
    mailbox = data["mailbox"]
    if mailbox is not None and mailbox["capacity"] == float("inf"):
        mailbox["capacity"] = None
    for child in data["children"]:
        _finite(child)
