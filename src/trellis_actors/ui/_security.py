"""Who may use the UI, and proof that a POST comes from one of its own pages.

* **Login.** With a token, the login form checks it once and sets a cookie holding an HMAC
  of the token (never the token itself): stable across restarts and nodes, and useless for
  the API, which wants the token.
* **CSRF.** Every browser gets a random nonce in a cookie; pages carry ``HMAC(key, nonce)``
  in a hidden field and in an ``X-CSRF-Token`` header on every HTMX request. A POST passes
  only when the two match. A cross-site page can neither read the cookie nor compute the
  HMAC, and the cookies are ``SameSite=Strict`` besides.

Every comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_COOKIE = "trellis_ui_session"
CSRF_COOKIE = "trellis_ui_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: How long a login lasts (seconds).
SESSION_MAX_AGE = 30 * 24 * 3600

_SESSION_CONTEXT = b"trellis-ui-session/1"
_CSRF_CONTEXT = b"trellis-ui-csrf/1"


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


@dataclass(frozen=True, slots=True)
class Guard:
    """The UI's credentials. ``token=None`` leaves the UI open (CSRF is checked anyway)."""

    token: str | None
    csrf_key: bytes

    @classmethod
    def create(cls, token: str | None) -> Guard:
        if token is None:
            return cls(None, secrets.token_bytes(32))
        if not token.strip():
            raise ValueError("a UI token must not be empty; pass token=None to leave it open")
        return cls(token, _mac(token.encode(), _CSRF_CONTEXT).encode())

    @property
    def required(self) -> bool:
        return self.token is not None

    def session_value(self) -> str:
        """What the session cookie holds once logged in: an HMAC of the token."""
        assert self.token is not None
        return _mac(self.token.encode(), _SESSION_CONTEXT)

    def token_matches(self, given: str) -> bool:
        return self.token is not None and _same(given, self.token)

    def logged_in(self, cookie: str | None) -> bool:
        if self.token is None:
            return True
        return cookie is not None and _same(cookie, self.session_value())

    def csrf_token(self, nonce: str) -> str:
        """The token pages carry for the browser holding ``nonce``."""
        return _mac(self.csrf_key, nonce.encode("utf-8", "surrogateescape"))

    def csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given:
            return False
        return _same(given, self.csrf_token(nonce))


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def valid_nonce(value: str) -> bool:
    return 32 <= len(value) <= 64 and value.isascii()


def safe_next(target: str | None, default: str) -> str:
    """Where to go after login: a path inside the UI, never another site."""
    if not target or not target.startswith("/ui") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target
