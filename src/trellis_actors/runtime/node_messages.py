"""The nodes registry's messages: what the node actor asks of the store actor (listed in
:data:`~.messages.StoreMsg`, answered by :func:`answer`), and the node actor's own mail.

Kept apart from :mod:`.messages` so that the nodes vocabulary is in one small place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from ..actors import Request
from ..stores.base import Store
from ..stores.nodes import NodeInfo

# -- to the store actor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeBeat(Request[None]):
    """A node's heartbeat: write its row, and delete rows of nodes long gone."""

    node: NodeInfo
    now: float


@dataclass(frozen=True, slots=True)
class ListNodes(Request[list[NodeInfo]]):
    pass


@dataclass(frozen=True, slots=True)
class ForgetNode(Request[bool]):
    """A node stops: its row goes."""

    node_id: str


NodeStoreMsg = NodeBeat | ListNodes | ForgetNode


async def answer(store: Store, msg: NodeStoreMsg) -> None:
    """Do what ``msg`` asks of ``store`` and reply."""
    match msg:
        case NodeBeat(node, now):
            await store.save_node(node)
            await store.prune_nodes(now)
            msg.reply.send(None)
        case ListNodes():
            msg.reply.send(await store.list_nodes())
        case ForgetNode(node_id):
            msg.reply.send(await store.delete_node(node_id))
        case _:
            assert_never(msg)


# -- to the node actor --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beat:
    """The node actor's timer: time to write the heartbeat."""


@dataclass(frozen=True, slots=True)
class Draining:
    """The node drains: say so in the registry now, not at the next beat."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One readiness check's last answer: ``ok``, or why not (``failed``, ``timed out``)."""

    name: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    """A round of readiness checks ended (from the node actor's background task)."""

    results: tuple[CheckResult, ...]


@dataclass(frozen=True, slots=True)
class Readiness(Request[tuple[CheckResult, ...]]):
    """The readiness checks' last answers (a check not run yet is not ok: ``pending``)."""


NodeMsg = Beat | Draining | Checked | Readiness
