"""Who may use the UI, and proof that a POST comes from one of its own pages.

* **Login.** With tokens, the login form checks one once and starts a session
  (:mod:`._sessions`): the cookie holds a random session id, the store its hash. The
  session carries the token's scopes; every page and action checks them through
  :meth:`trellis_actors.http.auth.Auth.check`, as the API does.
* **CSRF.** Every browser gets a random nonce in a cookie; pages carry ``HMAC(key, nonce)``
  in a hidden field and in an ``X-CSRF-Token`` header on every HTMX request. A POST passes
  only when the two match. A cross-site page can neither read the cookie nor compute the
  HMAC, and the cookies are ``SameSite=Strict`` besides. The key is derived from the
  configured tokens, so every node with the same tokens accepts the others' pages.
* **Where to go after login** (``next=``): only a path under ``/ui``, checked after
  decoding, so that no spelling of another site gets through (:func:`safe_next`).

Every comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..access.check import Auth
from ._sessions import LoginLimiter

SESSION_COOKIE = "trellis_ui_session"
CSRF_COOKIE = "trellis_ui_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_CSRF_CONTEXT = b"trellis-ui-csrf/1"


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


@dataclass(frozen=True, slots=True)
class Guard:
    """The UI's credentials: the server's tokens (none: the UI is open; CSRF is checked
    anyway), the CSRF key, and the login rate limit."""

    auth: Auth
    csrf_key: bytes
    limiter: LoginLimiter

    @classmethod
    def create(cls, auth: Auth) -> Guard:
        if not auth.enabled:
            return cls(auth, secrets.token_bytes(32), LoginLimiter())
        digests = "\n".join(sorted(token.sha256 for token in auth.tokens.tokens))
        return cls(auth, _mac(digests.encode(), _CSRF_CONTEXT).encode(), LoginLimiter())

    @property
    def required(self) -> bool:
        return self.auth.enabled

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
    """Where to go after login: a path inside the UI, never another site.

    The path is percent-decoded until it stops changing, then refused (``default``) if it
    has a scheme or host, a backslash, a control character, an empty segment (``//``), a
    ``.`` or ``..`` segment, or does not lie under ``/ui``.
    """
    if not target or len(target) > 2048:
        return default
    if any(ord(char) < 0x20 or char in "\\\x7f" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    path = parts.path
    for _ in range(4):  # %252F -> %2F -> /
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return default
    if any(ord(char) < 0x20 or char in "\\\x7f" for char in path):
        return default
    segments = path.split("/")
    if segments[0] != "" or segments[1:2] != ["ui"]:
        return default
    if any(segment in ("", ".", "..") for segment in segments[2:-1]):
        return default
    if segments[-1] in (".", ".."):
        return default
    return target
