"""Who may call what: every route declares the scope it needs, checked in one place.

* :func:`needs` marks a view function with its :class:`~.tokens.Scope`; :func:`declare`
  marks a view someone else registered (quart-schema's document, static files).
* :meth:`Auth.check` is the one decision: given the scope a route needs and who is calling
  (a bearer token's grant for the API, a login session's for the web UI), go on or be
  refused with :class:`Refused` (401: no valid credential; 403: a credential without the
  scope). A route without a declared scope is refused too — it is a bug, and a test walks
  every route of the app to catch it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from quart import Quart, Request

from .tokens import ANYONE, Grant, Scope, Token, Tokens

F = TypeVar("F", bound=Callable[..., Any])

_SCOPE_ATTRIBUTE = "_trellis_scope"
#: The scope of ``/metrics``: ``read``, or ``public`` with ``--metrics-public``.
METRICS = "metrics"


def needs(scope: Scope | str) -> Callable[[F], F]:
    """Declare the scope a route needs (``"public"`` for none)."""
    wanted = scope if scope == METRICS else Scope(scope)

    def decorate(func: F) -> F:
        setattr(func, _SCOPE_ATTRIBUTE, wanted)
        return func

    return decorate


def declare(app: Quart, endpoint: str, scope: Scope | str) -> None:
    """Declare the scope of a view registered elsewhere (wrapped, not modified)."""
    view = app.view_functions[endpoint]

    @functools.wraps(view)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = view(*args, **kwargs)
        return await result if isinstance(result, Awaitable) else result

    app.view_functions[endpoint] = needs(scope)(wrapped)


def declared(func: Callable[..., Any] | None) -> Scope | str | None:
    """The scope ``func`` declares (None: it declares none)."""
    return getattr(func, _SCOPE_ATTRIBUTE, None)


class Refused(Exception):
    """The caller may not go on: ``status`` 401 or 403, ``scope`` the one needed."""

    def __init__(self, status: int, scope: Scope | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.scope = scope
        self.message = message


@dataclass(frozen=True, slots=True)
class Auth:
    """The tokens a server accepts. With none (``Auth()``) every route is open.

    ``token`` adds one admin token (the single token of earlier versions).
    """

    token: str | None = None
    metrics_public: bool = False
    tokens: Tokens = field(default_factory=Tokens)

    def __post_init__(self) -> None:
        if self.token is not None:
            object.__setattr__(self, "tokens", self.tokens + Tokens((Token.admin(self.token),)))

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def scope_of(self, func: Callable[..., Any] | None) -> Scope | None:
        """The scope a view needs; None when it declares none."""
        wanted = declared(func)
        if wanted == METRICS:
            return Scope.PUBLIC if self.metrics_public else Scope.READ
        return None if wanted is None else Scope(wanted)

    def bearer(self, request: Request) -> Grant | None:
        """The grant of the request's ``Authorization: Bearer`` token (None: none valid)."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        return self.tokens.match(credential.strip())

    def allows(self, request: Request) -> bool:
        """Whether ``request`` carries a token this server accepts."""
        return self.bearer(request) is not None

    def check(self, scope: Scope | None, who: Grant | None, *, known: bool = True) -> Grant:
        """The one decision: may ``who`` use a route that needs ``scope``?

        ``known=False`` is a request no route matched: any valid credential may go on
        (to its 404). Returns the caller's grant; raises :class:`Refused`.
        """
        if not self.enabled:
            return ANYONE
        if known and scope is None:
            raise Refused(403, None, "this route declares no scope, so nobody may use it")
        if scope is Scope.PUBLIC:
            return who or ANYONE
        if who is None:
            needed = "a valid token" if scope is None else f"a token with the '{scope}' scope"
            raise Refused(401, scope, f"this endpoint needs {needed}")
        if scope is not None and not who.allows(scope):
            raise Refused(
                403, scope, f"token {who.name!r} may not do this: it needs the '{scope}' scope"
            )
        return who

    def openapi_security(self, scope: Scope) -> list[dict[str, list[str]]]:
        """The OpenAPI security requirement of an operation needing ``scope``."""
        if scope is Scope.PUBLIC:
            return []
        return [{"bearer": [scope.value]}]
