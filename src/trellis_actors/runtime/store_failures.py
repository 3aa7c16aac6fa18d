"""What a failed store call means: the store is down, the request's data was bad, or a bug.

The store actor decides by the driver's exception types (and SQLite's result codes),
never by the text of a message:

* an **outage** — the database is down or unreachable, the disk is full, the file is
  locked, a connection was lost — is nobody's fault and passes by itself: the actor keeps
  running, refuses what needs the store and probes it until it answers;
* **bad data** is one request's problem: that request gets a 4xx, the others go on;
* anything else is a **fault** (a bug in our code or SQL): the actor crashes, and its
  supervisor restarts it.
"""

from __future__ import annotations

import sqlite3
import sys
from enum import Enum

from ..errors import TrellisError

#: SQLite primary result codes of an outage: busy/locked, out of memory, read-only or
#: unopenable file, I/O error, corrupt or not a database, disk full, file too large.
_SQLITE_OUTAGE = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 22, 26})
#: PostgreSQL SQLSTATE class "program limit exceeded" (an index row or a statement too
#: big: the data's fault), although psycopg files it under OperationalError.
_PG_TOO_BIG = "54"


class Failure(Enum):
    """The kinds of store failure (see the module docstring)."""

    REFUSED = "refused"  #: a TrellisError: the request's own answer (no such task, ...)
    OUTAGE = "outage"
    BAD_DATA = "bad-data"
    FAULT = "fault"


def classify(exc: BaseException) -> Failure:
    """What ``exc``, raised by a store call, says about the store."""
    if isinstance(exc, TrellisError):
        return Failure.REFUSED
    if isinstance(exc, sqlite3.Error):
        return _sqlite(exc)
    # psycopg is imported only by the PostgreSQL store: if it is not loaded, the error
    # cannot be one of its.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return Failure.BAD_DATA
        if sqlstate.startswith(_PG_TOO_BIG):
            return Failure.BAD_DATA
        # OperationalError covers lost and refused connections, admin shutdowns, a full
        # disk and the pool's timeouts; InterfaceError a connection closed under us.
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return Failure.OUTAGE
        return Failure.FAULT
    # Values the driver cannot take: an integer beyond 64 bits, a string with a lone
    # surrogate (UnicodeEncodeError), JSON nested too deep to encode.
    if isinstance(exc, OverflowError | ValueError | RecursionError):
        return Failure.BAD_DATA
    return Failure.FAULT


def _sqlite(exc: sqlite3.Error) -> Failure:
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
        return Failure.BAD_DATA
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised without a result code: trust the type
        is_outage = isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError
        return Failure.OUTAGE if is_outage else Failure.FAULT
    if code & 0xFF in _SQLITE_OUTAGE:  # extended codes carry the primary one in the low byte
        return Failure.OUTAGE
    if code & 0xFF == 18:  # SQLITE_TOOBIG: a string or blob over the limit
        return Failure.BAD_DATA
    return Failure.FAULT  # SQLITE_ERROR: a syntax error, a missing table: our bug
