"""UI login sessions: a random id per login, kept (as a hash) in the store, which every node
shares; an idle and an absolute expiry; a logout that ends it. Also the login rate limit.

The cookie holds ``secrets.token_urlsafe(32)``; the store holds its sha256, the token's name
and scopes, and times. A session is good while its token (by name) is still configured, it
was used within ``idle`` seconds, and ``absolute`` seconds have not passed since the login.
Uses are recorded at most once a minute (:data:`TOUCH_EVERY`), so idle time is exact to
within that. Times come from the runtime's clock, so they follow virtual time in tests.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import deque
from dataclasses import dataclass, field

import trio

from .._time import Clock
from ..access.tokens import Grant
from ..runtime.runtime import Runtime
from ..runtime.session_messages import (
    EndSession,
    GetSession,
    PruneSessions,
    SaveSession,
    TouchSession,
)
from ..stores.sessions import Session

#: Default idle expiry: a session unused this long ends (seconds).
DEFAULT_IDLE = 12 * 3600.0
#: Default absolute expiry: a session ends this long after its login, used or not.
DEFAULT_ABSOLUTE = 7 * 24 * 3600.0
#: A use is written to the store at most this often (seconds).
TOUCH_EVERY = 60.0
#: Failed logins allowed per client address within :data:`LOGIN_WINDOW` seconds.
LOGIN_FAILURES = 5
LOGIN_WINDOW = 60.0


def key_of(session_id: str) -> str:
    """What the store keeps of a session id: its sha256 (hex)."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a login lasts: ``idle`` seconds unused, ``absolute`` seconds at most."""

    idle: float = DEFAULT_IDLE
    absolute: float = DEFAULT_ABSOLUTE

    def __post_init__(self) -> None:
        if not 0 < self.idle <= self.absolute:
            raise ValueError("a session's idle expiry must be > 0 and at most its absolute one")

    def alive(self, session: Session, now: float) -> bool:
        return now < session.expires_at and now - session.seen_at < self.idle


class Sessions:
    """Log in, look up and log out, through the store actor."""

    def __init__(self, runtime: Runtime, policy: SessionPolicy) -> None:
        self._runtime = runtime
        self.policy = policy

    def _now(self) -> float:
        return Clock().now()

    async def start(self, grant: Grant) -> str:
        """A new session for ``grant``; returns its id (for the cookie, and nowhere else)."""
        now = self._now()
        # Sessions that ended without a logout go now and then: on each login.
        await self._runtime.session(PruneSessions(now - self.policy.idle, now))
        session_id = secrets.token_urlsafe(32)
        scopes = tuple(sorted(scope.value for scope in grant.scopes))
        expires = now + self.policy.absolute
        session = Session(key_of(session_id), grant.name, scopes, now, now, expires)
        await self._runtime.session(SaveSession(session))
        return session_id

    async def find(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` names (recording the use), or None."""
        if not session_id or len(session_id) > 128:
            return None
        key = key_of(session_id)
        session: Session | None = await self._runtime.session(GetSession(key))
        if session is None:
            return None
        now = self._now()
        if not self.policy.alive(session, now):
            await self._runtime.session(EndSession(key))
            return None
        if now - session.seen_at >= TOUCH_EVERY:
            await self._runtime.session(TouchSession(key, now))
        return session

    async def end(self, session_id: str | None) -> bool:
        """Log out: the session is gone, for every node."""
        if not session_id or len(session_id) > 128:
            return False
        ended: bool = await self._runtime.session(EndSession(key_of(session_id)))
        return ended


@dataclass(slots=True)
class LoginLimiter:
    """At most ``failures`` failed logins per client address in ``window`` seconds; then
    that address waits. A success does not clear the count (a valid token would otherwise
    let its holder guess others without end). Kept in memory, per node: behind a load
    balancer an address gets that many tries on each node."""

    failures: int = LOGIN_FAILURES
    window: float = LOGIN_WINDOW
    max_addresses: int = 10_000
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next try (0: it may try now)."""
        now = trio.current_time()
        recent = self._recent(address, now)
        if len(recent) < self.failures:
            return 0.0
        return max(1.0, math.ceil(recent[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = trio.current_time()
        if address not in self._seen and len(self._seen) >= self.max_addresses:
            self._forget(now)
        self._recent(address, now).append(now)

    def _recent(self, address: str, now: float) -> deque[float]:
        recent = self._seen.setdefault(address, deque(maxlen=self.failures))
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent

    def _forget(self, now: float) -> None:
        for address in [
            a for a, times in self._seen.items() if not times or times[-1] <= now - self.window
        ]:
            del self._seen[address]
        if len(self._seen) >= self.max_addresses:  # a flood of fresh addresses: start over
            self._seen.clear()
