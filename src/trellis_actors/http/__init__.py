"""The HTTP API: a Quart-Trio app over the runtime facade, served by Hypercorn.

* :func:`create_app` builds the app for a running :class:`~trellis_actors.Runtime`;
* :func:`serve` runs it as a child task (``urls = await nursery.start(serve, runtime)``);

Names load on first use, so that the client commands do not import the server stack.
The HTTP client is :mod:`trellis_actors.client`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY
    from .app import create_app as create_app
    from .auth import Auth as Auth
    from .server import DEFAULT_BIND as DEFAULT_BIND
    from .server import ServerConfig as ServerConfig
    from .server import serve as serve

_HOMES = {
    "DEFAULT_MAX_BODY": ".app",
    "create_app": ".app",
    "Auth": ".auth",
    "DEFAULT_BIND": ".server",
    "ServerConfig": ".server",
    "serve": ".server",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    try:
        home = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(home, __name__), name)
