"""The store actor's messages about web UI login sessions, and how it answers them.

Kept apart from :mod:`.messages` (which lists them in ``StoreMsg``) so that the session
vocabulary is in one small place; the store decides nothing here, it keeps rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from ..actors import Request
from ..stores.base import Store
from ..stores.sessions import Session


@dataclass(frozen=True, slots=True)
class SaveSession(Request[None]):
    session: Session


@dataclass(frozen=True, slots=True)
class GetSession(Request[Session | None]):
    key: str


@dataclass(frozen=True, slots=True)
class TouchSession(Request[bool]):
    key: str
    seen_at: float


@dataclass(frozen=True, slots=True)
class EndSession(Request[bool]):
    key: str


@dataclass(frozen=True, slots=True)
class PruneSessions(Request[int]):
    seen_before: float
    now: float


SessionMsg = SaveSession | GetSession | TouchSession | EndSession | PruneSessions


async def answer(store: Store, msg: SessionMsg) -> None:
    """Do what ``msg`` asks of ``store`` and reply."""
    match msg:
        case SaveSession(session):
            await store.save_session(session)
            msg.reply.send(None)
        case GetSession(key):
            msg.reply.send(await store.get_session(key))
        case TouchSession(key, seen_at):
            msg.reply.send(await store.touch_session(key, seen_at))
        case EndSession(key):
            msg.reply.send(await store.delete_session(key))
        case PruneSessions(seen_before, now):
            msg.reply.send(await store.prune_sessions(seen_before, now))
        case _:
            assert_never(msg)
