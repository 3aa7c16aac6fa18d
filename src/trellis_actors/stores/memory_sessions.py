"""Login sessions kept in memory, for :class:`~trellis_actors.stores.memory.MemoryStore`."""

from __future__ import annotations

from .sessions import Session


class MemorySessions:
    """The session half of the store protocol, in a dictionary."""

    def __init__(self) -> None:
        super().__init__()
        self._sessions: dict[str, Session] = {}

    async def save_session(self, session: Session) -> None:
        self._sessions[session.key] = session

    async def get_session(self, key: str) -> Session | None:
        return self._sessions.get(key)

    async def touch_session(self, key: str, seen_at: float) -> bool:
        found = self._sessions.get(key)
        if found is None:
            return False
        if seen_at <= found.seen_at:
            return True  # an older use changes nothing (as in the SQL stores)
        self._sessions[key] = Session(
            found.key, found.token_name, found.scopes, found.created_at, seen_at, found.expires_at
        )
        return True

    async def delete_session(self, key: str) -> bool:
        return self._sessions.pop(key, None) is not None

    async def prune_sessions(self, seen_before: float, now: float) -> int:
        gone = [
            key
            for key, found in self._sessions.items()
            if found.seen_at < seen_before or found.expires_at <= now
        ]
        for key in gone:
            del self._sessions[key]
        return len(gone)
