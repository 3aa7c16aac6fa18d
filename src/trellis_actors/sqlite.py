"""Enqueue beside a SQLite node: another process (a web app, a script) writes tasks into
the node's database file, and the node starts them within milliseconds.

::

    from trellis_actors import sqlite

    task_id = sqlite.enqueue("/var/lib/trellis/tasks.db", send_receipt, Receipt(order_id=42))

    with sqlite3.connect("/var/lib/trellis/tasks.db") as conn:  # your own transaction
        conn.execute("INSERT INTO orders ...")
        sqlite.enqueue(conn, send_receipt, Receipt(order_id=42))

Given a path (or a ``sqlite:///…`` URL, whose ``?synchronous=`` is honoured), each call is
one short transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) on a connection kept per path and
per thread, set up as the store sets up its own (WAL, ``synchronous=NORMAL``, a 5 s busy
timeout). The first call in a thread migrates the schema as a node does at start (so a
producer may start before the node), after checking that the file is empty or already a
Trellis database: any other file is refused with ConfigurationError.

Given a ``sqlite3.Connection``, the task is written in the caller's transaction and nothing
is committed or rolled back here; on a connection in autocommit mode outside a transaction,
in a transaction of its own. Its schema must be in place already.

A node on the file notices the commit through ``PRAGMA data_version`` (see
``SqliteStore.watch``). ``task`` and the options are as for
:func:`trellis_actors.postgres.enqueue`: a handle brings its type's queue, attempts and
contract; a type name gets the defaults (give ``queue=`` if its type runs elsewhere).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any, overload
from urllib.parse import urlsplit

from typing_extensions import Unpack

from . import _producing
from .contracts import P, R, TaskHandle
from .errors import ConfigurationError
from .lifecycle import NewTask
from .rules import SubmitOptions
from .stores.base import arrive
from .stores.sqlite import PRODUCER_AUTOCHECKPOINT, _SqliteLogic, connect, parse_url

__all__ = ["close", "enqueue", "enqueue_many"]

#: A database: a path, a ``sqlite:///…`` URL, or an open connection.
Target = str | os.PathLike[str] | sqlite3.Connection

_logic = _SqliteLogic()
#: A node on the file checkpoints for its producers (see ``SqliteStore.watch``).
_AUTOCHECKPOINT = f"PRAGMA wal_autocheckpoint = {PRODUCER_AUTOCHECKPOINT}"
_local = threading.local()


@overload
def enqueue(
    target: Target, task: TaskHandle[P, R], payload: P, /, **options: Unpack[SubmitOptions]
) -> str: ...
@overload
def enqueue(
    target: Target, task: str, payload: Any = None, /, **options: Unpack[SubmitOptions]
) -> str: ...
def enqueue(
    target: Target,
    task: TaskHandle[Any, Any] | str,
    payload: Any = None,
    /,
    **options: Unpack[SubmitOptions],
) -> str:
    """Write one task to ``target``; returns its id (see the module docstring).

    Raises ValidationError (naming the field) or UnknownTaskType before anything is
    written; ConfigurationError for a file that is not a Trellis database, or a target
    that cannot name one.
    """
    tasks, now = _producing.one(task, payload, options)
    return _write(target, tasks, now)[0]


def enqueue_many(target: Target, items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Write many tasks to ``target`` in one transaction (``{"type", "payload", ...}``
    each); returns their ids, in order. All are checked first."""
    tasks, now = _producing.many(items)
    return _write(target, tasks, now)


def close() -> None:
    """Close this thread's cached connections (the next call opens them again)."""
    cached = _cache()
    for conn in set(cached.values()):
        conn.close()
    cached.clear()


def _cache() -> dict[Any, sqlite3.Connection]:
    """This thread's connections, by target and by (absolute path, synchronous); a forked
    child starts afresh (a connection must not cross a fork)."""
    local = _local.__dict__
    if local.get("pid") != os.getpid():
        local["pid"] = os.getpid()
        local["conns"] = {}
    conns: dict[Any, sqlite3.Connection] = local["conns"]
    return conns


def _write(target: Target, tasks: list[NewTask], now: float) -> list[str]:
    if not tasks:
        return []
    with _producing.traced(tasks):
        if isinstance(target, sqlite3.Connection):
            return _in_callers(target, tasks, now)
        return _in_own(_connection(target), tasks, now)


def _in_own(conn: sqlite3.Connection, tasks: list[NewTask], now: float) -> list[str]:
    conn.execute("BEGIN IMMEDIATE")  # the write lock up front, as the store takes it
    try:
        ids = _insert(conn.cursor(), tasks, now)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return ids


def _insert(cur: sqlite3.Cursor, tasks: list[NewTask], now: float) -> list[str]:
    """The store's enqueue (``TaskLogic.enqueue``) on ``cur``; returns the tasks' ids.

    A lone task without an idempotency key asks the database nothing, so its row and
    events go straight in, two statements: the store's rows (``arrive``, ``row``,
    ``event_row``) and statements, without the steps a batch or a key needs.
    """
    if len(tasks) == 1 and tasks[0].idempotency_key is None:
        moves = arrive(tasks[0], now)
        task = moves[-1].task
        _logic.insert_tasks(cur, [_logic.row(task)])
        _logic.insert_events(cur, [_logic.event_row(move.event) for move in moves])
        _logic.published(cur, moves)
        return [task.id]
    submitted, _ = _logic.enqueue(cur, tasks, now)
    return [s.task.id for s in submitted]


def _in_callers(conn: sqlite3.Connection, tasks: list[NewTask], now: float) -> list[str]:
    if not conn.in_transaction and _autocommits(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = _in_callers(conn, tasks, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        return ids
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row  # the store's logic reads columns by name
    try:
        return _insert(cur, tasks, now)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        raise _producing.no_schema(exc) from exc


def _autocommits(conn: sqlite3.Connection) -> bool:
    """True when each statement on ``conn`` would commit on its own."""
    mode = getattr(conn, "autocommit", -1)  # Python 3.12+; -1: the legacy behaviour
    return bool(mode is True or (mode == -1 and conn.isolation_level is None))


def _connection(target: str | os.PathLike[str]) -> sqlite3.Connection:
    """This thread's connection to ``target``, opened (and migrated) at first use."""
    cached = _cache()
    conn = cached.get(target) if isinstance(target, str | os.PathLike) else None
    if conn is None:
        text = _path_text(target)
        scheme = urlsplit(text).scheme if "://" in text else ""
        if scheme not in ("", "sqlite"):
            raise ConfigurationError(
                f"{scheme}:// is not a SQLite database: sqlite.enqueue takes the path of the "
                "node's database file or its sqlite:/// URL (for PostgreSQL, "
                "trellis_actors.postgres.enqueue writes on your own connection)"
            )
        path, synchronous = parse_url(text) if text.startswith("sqlite:") else (text, "NORMAL")
        if path == ":memory:" or not path:
            raise ConfigurationError(
                f"{text!r} is private to one connection, so no node would see its tasks: "
                "give the path of the node's database file"
            )
        key = (os.path.abspath(_file_name(path)), synchronous)
        conn = cached.get(key)
        if conn is None:
            conn = cached[key] = connect(
                path, synchronous, check=partial(_trellis_or_empty, path=path)
            )
            conn.execute(_AUTOCHECKPOINT)
        cached[target] = conn
    return conn


def _path_text(target: Any) -> str:
    """``target`` (a path or a URL) as text; ConfigurationError for anything else."""
    text = os.fspath(target) if isinstance(target, str | os.PathLike) else None
    if not isinstance(text, str):
        raise ConfigurationError(
            "the database must be a path, a sqlite:/// URL or a sqlite3.Connection, "
            f"not {type(target).__name__}"
        )
    return text


def _file_name(path: str) -> str:
    """``path``, if SQLite can open a file by it; ConfigurationError otherwise."""
    try:
        path.encode("utf-8")  # as sqlite3 passes it on
        if "\0" not in path:
            return path
    except UnicodeEncodeError:
        pass
    raise ConfigurationError(f"{path!r} cannot name a file: it holds a NUL or a lone surrogate")


def _trellis_or_empty(conn: sqlite3.Connection, *, path: str) -> None:
    """Refuse a file that is neither empty nor a Trellis database (nothing is written)."""
    try:
        tables = {row[0] for row in conn.execute(_logic.q["tables"])}
    except sqlite3.DatabaseError as exc:
        raise ConfigurationError(
            f"{path!r} is not a Trellis database: the file is not SQLite at all ({exc}); "
            "give the path of the node's database file (its store URL: sqlite:///path)"
        ) from exc
    if tables and "trellis_migrations" not in tables:
        shown = ", ".join(sorted(tables)[:3])
        raise ConfigurationError(
            f"{path!r} is not a Trellis database: it has other tables ({shown}) and no "
            "trellis_migrations; give the path of the node's database file"
        )
