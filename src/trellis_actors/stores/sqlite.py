"""``sqlite:///path.db``: the embedded default store. Durable, zero set-up, one node.

URLs:

* ``sqlite:///tasks.db`` — a path relative to the working directory;
* ``sqlite:////var/lib/trellis/tasks.db`` — an absolute path (four slashes);
* ``sqlite:///:memory:`` — a private in-memory database (tests);
* ``?synchronous=NORMAL|FULL|OFF`` — how hard each commit is pushed to disk.

Durability. The database runs in WAL mode with ``synchronous=NORMAL`` by default: every
commit is written to the WAL before the call returns, so a task that was accepted survives
the *process* crashing or being killed. Only a power loss or an OS crash can lose the last
few commits, because NORMAL syncs the WAL at checkpoints rather than at every commit. That
is the usual trade for a task runtime (at-least-once delivery already asks handlers to be
idempotent) and keeps commits cheap; choose ``?synchronous=FULL`` to survive power loss too,
at the cost of an fsync per commit, or ``OFF`` for throw-away data.

Threads. One connection, used by one call at a time (a ``CapacityLimiter(1)``): a short
call (a few rows: :meth:`SqliteStore._call_short`) on the event loop, any other in a worker
thread. Every protocol call is one transaction, and the store actor hands a whole batch of
submissions, outcomes and claims to one call (``apply``), so commits are grouped. Rows are
written with multi-row statements. The watch thread (:meth:`SqliteStore.watch`)
checkpoints the WAL.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from itertools import compress
from typing import Any, Concatenate
from urllib.parse import parse_qs, unquote, urlsplit

import trio

from ..errors import ConfigurationError
from ..lifecycle import Task, Transition
from . import _sql
from ._filewatch import FileWatch
from ._sql import Cursor
from ._sqllogic import TaskLogic
from ._sqlstore import P, SqlStore, T
from .base import Counts, SingleNode

#: ``PRAGMA synchronous`` cannot take a bound parameter: one fixed statement per level.
_SYNCHRONOUS = {
    "NORMAL": "PRAGMA synchronous = NORMAL",
    "FULL": "PRAGMA synchronous = FULL",
    "OFF": "PRAGMA synchronous = OFF",
}
_USAGE = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
#: The store's connection waits for another connection's lock only in a worker thread.
_BUSY_WAIT = "PRAGMA busy_timeout = 5000"
_BUSY_FAIL = "PRAGMA busy_timeout = 0"
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
#: The watch thread checkpoints the WAL after this many commits it knows of (the store's
#: own and others' it saw: about a thousand pages, SQLite's own default), or a second
#: after the last one; and starts the WAL over once it holds this many pages (see
#: :func:`_checkpoint`), which keeps it under :data:`PRODUCER_AUTOCHECKPOINT`.
_CHECKPOINT_COMMITS = 64
_CHECKPOINT_EVERY = 1.0
_RESTART_PAGES = 1000
#: ``wal_autocheckpoint`` of the connections ``trellis_actors.sqlite`` opens: higher than
#: a watching node lets the WAL grow, so that a producer's commit beside a node never
#: waits for a checkpoint's disk syncs; without a node, the producer checkpoints itself.
PRODUCER_AUTOCHECKPOINT = 4000
#: Seconds between two looks at ``PRAGMA data_version`` by :meth:`SqliteStore.watch`; and
#: after how long without news it looks less often, and how often then (idle CPU: each look
#: is a thread waking up, about 20 µs of CPU on a small VM).
_WATCH_EVERY = 0.001
_WATCH_QUIET = 1.0
_WATCH_QUIET_EVERY = 0.005
#: Where writes to the WAL are told (:class:`FileWatch`): how soon a write that showed no
#: commit yet is looked at again (the writes meanwhile, the rest of that commit's pages,
#: wake nobody).
_WATCH_AGAIN = 0.0001


def parse_url(url: str) -> tuple[str, str]:
    """``(path, synchronous)`` from a ``sqlite:///…`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise ConfigurationError(f"bad SQLite URL {url!r}: {_USAGE}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ConfigurationError(
            f"unknown SQLite URL option {unknown[0]!r}: the only option is ?synchronous="
        )
    level = options.get("synchronous", ["NORMAL"])[-1].upper()
    if level not in _SYNCHRONOUS:
        raise ConfigurationError(
            f"synchronous={level!r} in {url!r} is not one of {', '.join(_SYNCHRONOUS)}"
        )
    return unquote(parts.path[1:]), level


def migrate(conn: sqlite3.Connection, *, from_schema: bool = True) -> list[int]:
    """Bring the database at ``conn`` to the latest schema; returns the versions applied.

    A fresh database gets ``schema.sql`` in one go (``from_schema``) or every migration in
    turn; an existing one gets the migrations it has not seen. One transaction.
    """
    q = _sql.queries("sqlite")
    known = _sql.migrations("sqlite")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(q["create_migrations"])
        applied = {row[0] for row in conn.execute(q["applied_migrations"])}
        newer = applied - {migration.version for migration in known}
        if newer:
            raise ConfigurationError(
                f"the database is at migration {max(newer)}, newer than this Trellis "
                f"knows ({len(known)}); upgrade Trellis"
            )
        todo = [migration for migration in known if migration.version not in applied]
        if todo and not applied and from_schema:
            scripts = [_sql.schema("sqlite")]
        else:
            scripts = [migration.sql for migration in todo]
        for script in scripts:
            for statement in _sql.sqlite_statements(script):
                conn.execute(statement)
        for migration in todo:
            params = {"version": migration.version, "name": migration.name}
            conn.execute(q["record_migration"], params | {"applied_at": time.time()})
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return [migration.version for migration in todo]


def connect(
    path: str,
    synchronous: str = "NORMAL",
    *,
    check: Callable[[sqlite3.Connection], None] | None = None,
) -> sqlite3.Connection:
    """A connection to the database at ``path`` as the store uses it: WAL, ``synchronous``,
    transactions begun and ended by hand, rows by name, the schema migrated (after
    ``check``, which may refuse the file)."""
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise ConfigurationError(
            f"cannot open the SQLite database {path!r} ({exc}); "
            "check that its folder exists and is writable"
        ) from exc
    try:
        if check is not None:
            check(conn)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(_SYNCHRONOUS[synchronous])
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class _SqliteLogic(TaskLogic):
    dialect = "sqlite"
    after_every_id = "~"  # sorts after the hex digits and hyphens of every UUID
    before_every_id = ""

    def __init__(self) -> None:
        super().__init__()
        # Tasks by (queue, status), kept up to date with every move written here, so that
        # counting is not a scan of the whole index (59 ms at a million tasks) each time
        # the UI or a metrics scrape asks. None: unknown, count afresh. Another connection
        # that writes to the file changes ``PRAGMA data_version``: counted afresh too.
        self._counts: collections.Counter[tuple[str, str]] | None = None
        self._data_version = 0

    def forget(self) -> None:
        super().forget()
        self._counts = None

    def counts(self, cur: Cursor) -> Counts:
        cur.execute(self.q["data_version"], {})
        version = cur.fetchone()[0]
        if self._counts is None or version != self._data_version:
            cur.execute(self.q["counts"], {})
            rows = cur.fetchall()
            self._counts = collections.Counter({(r["queue"], r["status"]): r["n"] for r in rows})
            self._data_version = version
        by_queue: dict[str, dict[str, int]] = {}
        for (queue, status), count in self._counts.items():
            if count:
                by_queue.setdefault(queue, {})[status] = count
        return Counts(by_queue)

    def published(self, cur: Cursor, moves: Sequence[Transition], freed: bool = False) -> None:
        counts = self._counts
        if counts is not None:
            for task, event in moves:
                if event.from_status is not None:
                    counts[(task.queue, event.from_status.value)] -= 1
                counts[(task.queue, event.to_status.value)] += 1

    def oldest(self, value: Any) -> tuple[float, ...]:
        return tuple(float(at) for at in json.loads(value))

    def delete_tasks(self, cur: Cursor, ids: list[str]) -> int:
        self._counts = None  # deleted rows are not moves: count afresh
        return super().delete_tasks(cur, ids)

    def purge_dead(self, cur: Cursor, ids: list[str]) -> int:
        self._counts = None
        return super().purge_dead(cur, ids)

    @staticmethod
    def row(task: Task) -> dict[str, Any]:
        row = TaskLogic.row(task)
        row["dead_letter"] = int(task.dead_letter)  # an int binds as is; a bool is adapted
        return row

    def ids_param(self, ids: list[str]) -> Any:
        return json.dumps(ids)  # read back with json_each: no statement built per list

    def insert_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        self._in_chunks(cur, "insert_tasks", _TASK_COLUMNS, rows)

    def update_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        self._in_chunks(cur, "update_tasks", _CHANGE_COLUMNS, rows)

    def insert_events(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        self._in_chunks(cur, "insert_events", _EVENT_COLUMNS, rows)

    def _in_chunks(
        self, cur: Cursor, query: str, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """Write ``rows`` with few statements: chunks of 256, 64, 16, 4, 2 (a new task's two
        events) or 1 rows, so that few texts per query exist (and stay in the connection's
        statement cache).

        A column that is None in every row of a chunk is written as a ``NULL`` in the
        statement, not bound: sqlite3 looks each bound None (and bool) up in its adapter
        registry, the dearest part of binding, and a new task has a dozen such columns.
        """
        width = len(columns)
        start = 0
        while start < len(rows):
            left = len(rows) - start
            size = next(size for size in _CHUNKS if size <= left)
            values = [row[name] for row in rows[start : start + size] for name in columns]
            start += size
            if size == 1:
                nulls = tuple([value is None for value in values])
                params = [value for value in values if value is not None]
            else:
                nulls = tuple([values[i::width].count(None) == size for i in range(width)])
                params = list(compress(values, [not null for null in nulls] * size))
            cur.execute(_expand(self.q[query], nulls, size), params)


_CHUNKS = (256, 64, 16, 4, 2, 1)
_TASK_COLUMNS = (
    "id", "type", "queue", "payload", "status", "priority", "attempt", "max_attempts",
    "run_at", "timeout", "idempotency_key", "dead_letter", "created_at", "queued_at",
    "started_at", "finished_at", "updated_at", "result", "error", "progress",
    "progress_message", "lease_owner", "lease_expires_at", "schedule_id", "trace_context",
    "parent_id",
)  # fmt: skip
_CHANGE_COLUMNS = (
    "id", "status", "attempt", "run_at", "queued_at", "started_at", "finished_at",
    "updated_at", "result", "error", "progress", "progress_message", "lease_owner",
    "lease_expires_at", "node", "worker",
)  # fmt: skip
_EVENT_COLUMNS = (
    "task_id", "from_status", "to_status", "at", "attempt", "detail", "node", "worker",
)  # fmt: skip


# Bounded: a statement has a few chunk sizes, but its NULL patterns could be many.
@functools.lru_cache(maxsize=512)
def _expand(statement: str, nulls: tuple[bool, ...], rows: int) -> str:
    """``statement`` with ``{rows}`` replaced by ``rows`` groups of one "?" per column, or
    ``NULL`` for the columns that ``nulls`` marks (None in every row)."""
    group = "(" + ", ".join(["NULL" if null else "?" for null in nulls]) + ")"
    return statement.replace("{rows}", ", ".join([group] * rows))


class SqliteStore(SingleNode, SqlStore):
    """The store protocol on one SQLite database file (see the module docstring)."""

    _driver_error = sqlite3.Error
    _read_before_claiming = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, self.synchronous = parse_url(url)
        self._logic = _SqliteLogic()
        self._limiter = trio.CapacityLimiter(1)
        self._conn: sqlite3.Connection | None = None
        self._closing = threading.Event()
        self._sightings: _Sightings | None = None
        self._commits = 0  # the store's write transactions so far (the watch checkpoints)

    async def open(self) -> None:
        if self._conn is None:
            self._closing.clear()
            conn = await trio.to_thread.run_sync(
                connect, self.path, self.synchronous, limiter=self._limiter
            )
            conn.execute(_BUSY_FAIL)
            self._conn = conn

    # -- wake-ups ------------------------------------------------------------------------
    async def watch(
        self,
        notify: Callable[[], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``notify()`` soon after another connection (another process: a producer
        using ``trellis_actors.sqlite.enqueue``, the CLI) commits to the file.

        A thread looks at ``PRAGMA data_version`` on a read connection of its own (it
        changes when any other connection commits) every millisecond, or every 5 ms after
        a second without news; on Linux also as soon as the WAL file is written
        (inotify), so that a commit is seen within microseconds rather than at the next look.
        It is started once that connection is open. It checks for
        cancellation at every look and ends at :meth:`close`, so nothing is left behind.
        The store's own commits are not news (see :class:`_Sightings`). A private
        ``:memory:`` database has no other connection: nothing to watch.

        While it runs, the thread also checkpoints the WAL (on a connection of its own)
        after every :data:`_CHECKPOINT_COMMITS` commits, the store's and those it saw, or a
        second after the last: the store's own commits, made on the event loop, then never
        wait for a checkpoint's disk syncs (its ``wal_autocheckpoint`` is off meanwhile),
        nor do producers' (see :func:`_checkpoint`).
        """
        if self.path == ":memory:":
            await SingleNode.watch(self, notify, task_status=task_status)
            return
        token = trio.lowlevel.current_trio_token()
        try:
            sightings = await trio.to_thread.run_sync(
                _Sightings.open, self.path, partial(token.run_sync_soon, notify)
            )
        except sqlite3.Error:  # the file cannot be read now: the queue's poll still works
            await SingleNode.watch(self, notify, task_status=task_status)
            return
        try:
            self._sightings = sightings
            await self._call(False, _watched, sightings, 0)
            # Opened before any commit can be told, and paused by each of the store's own.
            sightings.files = FileWatch.open(self.path + "-wal")
            task_status.started()
            await trio.to_thread.run_sync(self._watch, sightings)
        finally:
            self._sightings = None
            sightings.close()
            if self._conn is not None:  # the commits checkpoint again
                with trio.CancelScope(shield=True), contextlib.suppress(sqlite3.Error):
                    await self._call(False, _watched, None, _AUTOCHECKPOINT)

    def _watch(self, sightings: _Sightings) -> None:
        # Where the OS tells of writes to the WAL (Linux), a commit is looked for as soon as
        # its frames are written, besides the looks on a timer. A write with nothing to see
        # yet (a commit still being made) is looked at once more, shortly; the timer's next
        # look catches a commit that takes longer still.
        watch = sightings.files
        checkpoints: sqlite3.Connection | None = None
        try:
            quiet_since = checkpointed_at = time.monotonic()
            checkpointed = self._commits
            seen = 0  # looks that saw other connections' commits
            again = False  # the last look followed a write and saw nothing
            while not self._closing.is_set():
                trio.from_thread.check_cancelled()
                now = time.monotonic()
                news = sightings.look()
                if news:
                    sightings.wake()
                    quiet_since = now
                    seen += 1
                commits = self._commits + seen
                if commits - checkpointed >= _CHECKPOINT_COMMITS or (
                    commits != checkpointed and now - checkpointed_at >= _CHECKPOINT_EVERY
                ):
                    checkpoints = _checkpoint(checkpoints, self.path)
                    checkpointed, checkpointed_at = commits, now
                pause = _WATCH_EVERY if now - quiet_since < _WATCH_QUIET else _WATCH_QUIET_EVERY
                if watch is None:
                    time.sleep(pause)
                else:
                    # Every write told is another process's: the store pauses the watch
                    # while it holds the write lock (see _Sightings.writing).
                    written = watch.after(_WATCH_AGAIN) if again else watch.wait(pause)
                    # Another process's commit writes several frames, and is seen only
                    # once its last is written and the WAL index updated: while writes
                    # come with nothing to see yet, look again shortly, once for all the
                    # writes meanwhile.
                    again = written and not news
        finally:
            if checkpoints is not None:
                checkpoints.close()

    async def close(self) -> None:
        self._closing.set()  # a running watch() ends within a poll
        conn, self._conn = self._conn, None
        if conn is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(conn.close, limiter=self._limiter)

    async def _call(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        conn = self._open_conn()

        def patiently() -> T:
            # In a thread, a lock held by another connection is waited for.
            conn.execute(_BUSY_WAIT)
            try:
                return self._transaction(conn, write, fn, args, kwargs)
            finally:
                conn.execute(_BUSY_FAIL)

        return await trio.to_thread.run_sync(patiently, limiter=self._limiter)

    async def _call_short(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """On the event loop: a few rows' transaction takes tens of microseconds, less than
        the two thread hops it would cost. The loop never waits for a lock: the connection
        does not wait (``busy_timeout`` 0), so when another process holds the write lock,
        the call is made again in a thread, which waits. Checkpoints, which sync the disk,
        are the watch thread's (see :meth:`watch`), not the commit's."""
        conn = self._open_conn()
        async with self._limiter:
            try:
                return self._transaction(conn, write, fn, args, kwargs)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
        return await self._call(write, fn, *args, **kwargs)  # rolled back: again, waiting

    def _open_conn(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"{self.url} is not open; call `await store.open()` first")
        return conn

    def _transaction(
        self,
        conn: sqlite3.Connection,
        write: bool,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """``fn(cursor, *args, **kwargs)`` in one transaction on ``conn``."""
        sightings = self._sightings if write else None
        # IMMEDIATE takes the write lock up front: no upgrade deadlock with a second
        # process (the CLI) reading the same file.
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            if sightings is not None:
                sightings.writing()
                sightings.writer_saw(conn.cursor(), unless_told=True)
            result = fn(conn.cursor(), *args, **kwargs)
            if sightings is not None:
                sightings.committing()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            self._logic.forget()
            if sightings is not None:
                sightings.absorb(conn)
            raise
        if sightings is not None:
            sightings.absorb(conn)
        if write:
            self._commits += 1
        return result


def _busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock (``SQLITE_BUSY``, ``_LOCKED``,
    or one of their extended codes)."""
    code = getattr(exc, "sqlite_errorcode", None)  # None: not from SQLite itself
    return code is not None and code & 0xFF in _BUSY


#: SQLite's own default: a commit checkpoints the WAL once it holds this many pages.
_AUTOCHECKPOINT = 1000


def _watched(cur: Cursor, sightings: _Sightings | None, autocheckpoint: int) -> None:
    """On the store's connection, as its watch starts (``sightings``, autocheckpoint 0: the
    watch thread checkpoints) or ends (None, SQLite's default)."""
    if sightings is not None:
        sightings.writer_saw(cur)
    cur.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")


def _checkpoint(conn: sqlite3.Connection | None, path: str) -> sqlite3.Connection | None:
    """A checkpoint of ``path``'s WAL on ``conn`` (opened if None); returns the connection
    to use next time (None after an error: the next checkpoint opens a new one).

    ``PASSIVE`` first: it copies what no reader still needs, waiting for nobody. SQLite
    starts the WAL over only when a writer begins while all of it is copied, which a
    producer's commit followed at once by the node's claim of it never leaves time for:
    the WAL would grow by every task, and every producer's commit past its
    ``wal_autocheckpoint`` would pay a checkpoint. So once it holds
    :data:`_RESTART_PAGES`, ``RESTART``: it holds the write lock while it copies the
    little the passive one left and, if no reader is in the WAL, has the next writer
    start it over. It waits for nobody either (a busy answer: next time)."""
    try:
        if conn is None:
            conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        pages = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        if pages >= _RESTART_PAGES:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    except sqlite3.Error:
        if conn is not None:
            conn.close()
        return None
    return conn


class _Sightings:
    """What :meth:`SqliteStore.watch` has seen of the file, shared by its thread and the
    store's writer, so that the store's own commits do not wake its own queue.

    ``PRAGMA data_version`` on a connection changes when *another* connection commits.
    The watch's read connection therefore sees the store's commits as well as other
    processes'; around each of its commits the writer tells the watch (:meth:`committing`:
    the watch does not look until the commit is absorbed), and after it looks there itself
    (:meth:`absorb`), so that change is not news. A commit by another process is not lost
    in that, whether it came before one of the store's or just after it, before the
    absorbing look: the writer's own ``data_version``, read at the start of each of its
    write transactions and again after its commit (:meth:`writer_saw`), changes only for
    other connections' commits, and wakes the queue then.
    """

    def __init__(self, conn: sqlite3.Connection, wake: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = conn
        self._seen = self._version(conn)
        self._writer: int | None = None  # the writer's data_version: only its thread uses it
        self._failing = False  # the last look failed
        self._committing = False  # the writer is committing: what changes is its own
        self.wake = wake  # notify(), from any thread
        #: The watch thread's inotify on the WAL, while it has one.
        self.files: FileWatch | None = None

    @classmethod
    def open(cls, path: str, wake: Callable[[], None]) -> _Sightings:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            return cls(conn, wake)
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _version(conn: sqlite3.Connection | Cursor) -> int:
        row = conn.execute(_sql.queries("sqlite")["data_version"], {}).fetchone()
        return int(row[0])

    def look(self) -> bool:
        """True when another connection committed since the last look or absorb."""
        with self._lock:
            if self._conn is None or self._committing:
                return False  # absorb() looks, and the writer's own version tells the rest
            try:
                version = self._version(self._conn)
            except sqlite3.Error:  # busy or unreadable: one wake-up, then the poll's turn
                news, self._failing = not self._failing, True
                return news
            news, self._seen, self._failing = version != self._seen, version, False
        return news

    def writing(self) -> None:
        """The store took the write lock: until :meth:`absorb`, every write to the WAL is
        its own (no other connection can commit meanwhile), and none wakes the watch
        thread."""
        files = self.files
        if files is not None:
            files.pause()

    def committing(self) -> None:
        """The store is about to commit: until :meth:`absorb`, what the watch would see is
        (also) its own doing."""
        with self._lock:
            self._committing = True

    def absorb(self, writer: sqlite3.Connection) -> None:
        """The store just committed (or rolled back) on ``writer``: what the watch would
        see now is its own doing, but for a commit by another connection since, which the
        writer's own ``data_version`` shows. (Never raises: the commit is made. Failing,
        the next look wakes the queue once.)"""
        files = self.files
        if files is not None:  # before the versions are read: a commit after it is told
            files.resume()
        with self._lock:
            self._committing = False
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._seen = self._version(self._conn)
        with contextlib.suppress(sqlite3.Error):  # a closed connection's too
            self.writer_saw(writer.cursor())

    def writer_saw(self, cur: Cursor, *, unless_told: bool = False) -> None:
        """On the store's connection (in a write transaction, or just after its commit):
        wake if another connection committed since the store last looked there. With
        ``unless_told`` (as a transaction starts), not if the watch has told of that
        commit already: a look of its own then finds nothing new. (Just after the
        store's commit, :meth:`absorb` has taken in whatever the watch would see.)"""
        version = self._version(cur)
        changed = self._writer is not None and version != self._writer
        if changed and (not unless_told or self.look()):
            self.wake()
        self._writer = version

    def close(self) -> None:
        files, self.files = self.files, None
        if files is not None:
            files.close()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
