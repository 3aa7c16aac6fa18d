"""Stores: where tasks and their events live. One protocol, three implementations.

:func:`open_store` picks one from a URL:

* ``memory://`` — in this process only; for tests and throw-away runs;
* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (``?synchronous=…``) —
  the embedded default, durable on one node;
* ``postgresql://…`` or ``postgres://…`` (any libpq URL: ``postgresql:///db`` for the
  Unix socket, ``?host=/socket/dir``, ...) or a libpq keyword string (``host=… dbname=…``)
  — several nodes sharing one database.

:func:`redact` shows any of them without its password.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ._sql import redact as redact
from .base import BulkDone as BulkDone
from .base import BulkStep as BulkStep
from .base import Counts as Counts
from .base import NewTask as NewTask
from .base import Outcome as Outcome
from .base import Page as Page
from .base import Store as Store
from .base import Submitted as Submitted
from .base import TaskFilter as TaskFilter
from .memory import MemoryStore as MemoryStore
from .sqlite import SqliteStore as SqliteStore

__all__ = [
    "POSTGRES_HINT",
    "BulkDone",
    "BulkStep",
    "Counts",
    "MemoryStore",
    "NewTask",
    "Outcome",
    "Page",
    "SqliteStore",
    "Store",
    "Submitted",
    "TaskFilter",
    "open_store",
    "redact",
]

#: What a missing PostgreSQL driver is told; psycopg is an extra, not a core dependency.
POSTGRES_HINT = "PostgreSQL support needs psycopg: pip install 'trellis-actors[postgres]'"
_USAGE = "use memory://, sqlite:///path.db, postgresql://user@host/db or host=… dbname=…"
#: A libpq keyword/value connection string starts with ``keyword=``.
_KEYWORDS = re.compile(r"\s*[A-Za-z_]+\s*=")


def open_store(url: str) -> Store:
    """The store for ``url``, not yet opened: ``await store.open()`` connects and migrates.

    Raises :class:`~trellis_actors.errors.ConfigurationError` for a URL no store accepts,
    and for a PostgreSQL URL where psycopg (the ``postgres`` extra) is not installed.
    """
    if "://" not in url and _KEYWORDS.match(url):
        scheme = "postgresql"  # host=… dbname=…: only libpq takes these
    else:
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "memory":
        if url != "memory://":
            raise ConfigurationError(f"the memory store takes no path or options: {_USAGE}")
        return MemoryStore(url)
    if scheme == "sqlite":
        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        return _postgres_store(url)
    shown = f"scheme {scheme!r}" if scheme else "no scheme"  # never the URL: a password
    raise ConfigurationError(f"unsupported store URL ({shown}): {_USAGE}")


def _postgres_store(url: str) -> Store:
    # psycopg is imported only here, when a PostgreSQL store is asked for.
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("psycopg", "psycopg_pool"):
            raise ConfigurationError(POSTGRES_HINT) from None
        reason = " ".join(str(exc).split())  # psycopg's own message spans lines
        if "libpq" in reason or "pq wrapper" in reason:  # psycopg without a libpq
            raise ConfigurationError(
                f"psycopg cannot load libpq ({reason}): install libpq (Debian: libpq5), or "
                "pip install 'trellis-actors[postgres-binary]' for a wheel that brings its own"
            ) from None
        raise
    return PostgresStore(url)
