"""Login sessions in a SQL table: the session half of the store protocol, for both SQL
stores. The statements are in ``sql/<dialect>/sessions.sql``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _sql
from ._sql import Cursor
from .sessions import Session


class SessionSteps:
    """Session reads and writes inside the caller's transaction (like MemorySessions)."""

    dialect: str

    def __init__(self) -> None:
        super().__init__()
        self.sessions_q: Mapping[str, str] = _sql.queries(self.dialect, "sessions.sql")

    @staticmethod
    def _session(row: Any) -> Session:
        return Session(
            key=row["key"],
            token_name=row["token_name"],
            scopes=tuple(row["scopes"].split()),
            created_at=row["created_at"],
            seen_at=row["seen_at"],
            expires_at=row["expires_at"],
        )

    def save_session(self, cur: Cursor, session: Session) -> None:
        row = {
            "key": session.key,
            "token_name": session.token_name,
            "scopes": " ".join(session.scopes),
            "created_at": session.created_at,
            "seen_at": session.seen_at,
            "expires_at": session.expires_at,
        }
        cur.execute(self.sessions_q["save_session"], row)

    def get_session(self, cur: Cursor, key: str) -> Session | None:
        cur.execute(self.sessions_q["get_session"], {"key": key})
        row = cur.fetchone()
        return None if row is None else self._session(row)

    def touch_session(self, cur: Cursor, key: str, seen_at: float) -> bool:
        cur.execute(self.sessions_q["touch_session"], {"key": key, "seen_at": seen_at})
        if cur.rowcount > 0:
            return True
        cur.execute(self.sessions_q["session_exists"], {"key": key})
        return cur.fetchone() is not None

    def delete_session(self, cur: Cursor, key: str) -> bool:
        cur.execute(self.sessions_q["delete_session"], {"key": key})
        return cur.rowcount > 0

    def prune_sessions(self, cur: Cursor, seen_before: float, now: float) -> int:
        cur.execute(self.sessions_q["prune_sessions"], {"seen_before": seen_before, "now": now})
        return cur.rowcount
