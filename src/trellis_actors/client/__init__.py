"""Clients of a Trellis server's HTTP API, for any Python program.

* :class:`Client` — synchronous (Django, Flask, scripts);
* :class:`AsyncClient` — the same methods, ``async``, under asyncio or trio.

Both take a task handle from ``@app.task`` (the payload is checked before sending, and
``wait`` parses the result) or a type name, and raise the typed errors of
:mod:`trellis_actors.errors`.
"""

from ._async import AsyncClient as AsyncClient
from ._sync import Client as Client

__all__ = ["AsyncClient", "Client"]
