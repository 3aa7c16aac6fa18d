"""The registry actor: a directory of live actors, kept up to date by supervisors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

import trio

from ._actor import Actor
from ._mailbox import Ref, Request


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """Published to subscribers when an actor registers (``up``) or unregisters."""

    name: str
    kind: str
    up: bool
    incarnation: int = 0  # which start of the actor's slot


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    kind: str
    ref: Ref[Any]
    incarnation: int = 0


@dataclass(frozen=True, slots=True)
class Unregister:
    name: str
    ref: Ref[Any]
    incarnation: int = 0


@dataclass(frozen=True, slots=True)
class Lookup(Request[Ref[Any] | None]):
    name: str


@dataclass(frozen=True, slots=True)
class ListActors(Request[dict[str, str]]):
    """Reply: every live actor's name mapped to its kind."""


@dataclass(frozen=True, slots=True)
class Subscribe(Request[None]):
    """Changes are sent to ``channel`` with ``send_nowait``; a full or closed one is dropped."""

    channel: trio.MemorySendChannel[RegistryChange]


RegistryMsg = Register | Unregister | Lookup | ListActors | Subscribe


class Registry(Actor[RegistryMsg]):
    """Directory of live actors: name → ref, with change notifications."""

    kind = "registry"

    def __init__(self) -> None:
        super().__init__()
        self._actors: dict[str, tuple[str, Ref[Any]]] = {}
        self._subscribers: list[trio.MemorySendChannel[RegistryChange]] = []

    async def handle(self, msg: RegistryMsg) -> None:
        match msg:
            case Register(name, kind, ref, incarnation):
                self._actors[name] = (kind, ref)
                self._publish(RegistryChange(name, kind, True, incarnation))
            case Unregister(name, ref, incarnation):
                entry = self._actors.get(name)
                if entry is not None and entry[1] is ref:
                    del self._actors[name]
                    self._publish(RegistryChange(name, entry[0], False, incarnation))
            case Lookup(name):
                entry = self._actors.get(name)
                msg.reply.send(None if entry is None else entry[1])
            case ListActors():
                msg.reply.send({name: kind for name, (kind, _) in self._actors.items()})
            case Subscribe(channel):
                self._subscribers.append(channel)
                msg.reply.send(None)
            case _:
                assert_never(msg)

    def _publish(self, change: RegistryChange) -> None:
        keep = []
        for channel in self._subscribers:
            try:
                channel.send_nowait(change)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            keep.append(channel)
        self._subscribers = keep
