"""Web UI login sessions as a store keeps them: one row per login, keyed by a hash.

The session id itself (the cookie) is never stored, only its sha256, so a copy of the
table logs nobody in. The store only keeps rows; when one has expired is decided by the UI
(:mod:`trellis_actors.ui._sessions`), which passes the times in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Session:
    """A login: whose token it came from, with which scopes, and its times (epoch
    seconds). ``expires_at`` is the absolute end; idleness is measured from ``seen_at``."""

    key: str  # sha256 (hex) of the session id
    token_name: str
    scopes: tuple[str, ...]
    created_at: float
    seen_at: float
    expires_at: float
