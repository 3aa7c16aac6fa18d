"""Who may call the API: an optional bearer token, checked in one place.

:meth:`Auth.allows` is the only check. The web UI (to come, under ``/ui``) will log in with a
cookie; accepting it means adding a second way in to that one method.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from quart import Request

from .errors import ApiError

#: Always open, so that orchestrators can probe a node that has a token.
PUBLIC_PATHS = frozenset({"/health", "/readyz"})


@dataclass(frozen=True, slots=True)
class Auth:
    """``token=None`` opens every endpoint; otherwise all but the public ones need it."""

    token: str | None = None
    metrics_public: bool = False

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ValueError("an API token must not be empty")

    def required(self, path: str) -> bool:
        if self.token is None or path in PUBLIC_PATHS:
            return False
        if path == "/" or path == "/ui" or path.startswith("/ui/"):
            return False  # the web UI checks its own login cookie (see trellis_actors.ui)
        return not (self.metrics_public and path == "/metrics")

    def allows(self, request: Request) -> bool:
        """Whether ``request`` carries a valid credential (compared in constant time)."""
        assert self.token is not None
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credential.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.token.encode("utf-8"))

    def check(self, request: Request) -> None:
        """Raise a 401 :class:`ApiError` unless ``request`` may go on."""
        if self.required(request.path) and not self.allows(request):
            raise ApiError(
                401,
                "unauthorized",
                "this endpoint needs an 'Authorization: Bearer <token>' header with the "
                "server's API token",
                headers={"WWW-Authenticate": 'Bearer realm="trellis"'},
            )
