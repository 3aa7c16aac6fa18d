"""``postgresql://…``: the store for several nodes sharing one database.

URL: any libpq connection string, passed to libpq as given: a URL
(``postgresql://user:pass@host:5432/db?sslmode=…``, ``postgres://…``, ``postgresql:///db``
for the default Unix socket, ``postgresql:///db?host=/var/run/postgresql``) or keywords
(``host=… dbname=… user=…``); plus two options of our own, taken out before libpq sees it:
``pool_min`` (default 1) and ``pool_max`` (default 4) connections.

* psycopg 3's blocking API runs in worker threads (``trio.to_thread``), on a
  ``psycopg_pool.ConnectionPool``.
* Every protocol call that writes is one transaction; a read runs in autocommit (each
  statement sees the latest commits, as it would inside a READ COMMITTED transaction,
  without a round trip for ``BEGIN`` and one for ``COMMIT``). The pool's connections are
  in autocommit mode and we send ``BEGIN`` and ``COMMIT`` ourselves: in a short call
  (the hot path: a submission, a claim, a worker's outcomes) both travel in a pipeline
  with the call's own statements, so ``BEGIN`` rides with its first query and ``COMMIT``
  with its last writes (a worker's outcomes are two round trips, not four). A claim of
  one queue, or of all, is one statement whose rows are read with the COMMIT's answer:
  alone, one round trip; in a submission's commit, none of its own
  (:meth:`_PostgresLogic.claim`).
* A call that fails with ``OperationalError`` before its COMMIT was sent (connection
  lost, server restart, deadlock) was rolled back whole, so the pool's idle connections
  are checked (dead ones replaced) and the call runs once more; a failure during COMMIT is
  not retried, since the commit may have happened. (A pipelined call that has had no
  answer yet syncs before it sends COMMIT, so that a connection that died unnoticed is
  found out while the call can still run again.) Connections are not checked before
  every use: that would cost a round trip per call.
* Claims, promotions and lease recovery take batches of rows with ``FOR UPDATE SKIP
  LOCKED``, so nodes never wait on each other's rows.
* Commits that make work ready send ``NOTIFY trellis_work``; :meth:`PostgresStore.watch`
  listens on a dedicated connection, read on the event loop.
* Leadership is a session-level advisory lock on a dedicated connection.
* Migrations run at :meth:`PostgresStore.open` (or :func:`migrate`) under a transaction
  advisory lock, so nodes that start together do not race.
"""

from __future__ import annotations

import contextlib
import enum
import re
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Concatenate
from urllib.parse import unquote

import psycopg
import trio
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ConnStatus, PipelineStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ConfigurationError
from ..lifecycle import Recorded, Task, Transition
from . import _sql
from ._sql import Cursor, redact
from ._sqllogic import TaskLogic, best_first, wakes_workers
from ._sqlstore import P, SqlStore, T

_RECONNECT_EVERY = 1.0  # seconds between tries to open a lost LISTEN connection again
#: Seconds a call waits for a pool connection. Calls never outnumber the pool's connections
#: (a CapacityLimiter), so a wait means one is being opened: past this, the database is
#: taken to be down (PoolTimeout, an OperationalError) rather than the call hanging on.
_CONNECTION_WAIT = 5.0
_COPY_FROM = 16  # rows: fewer are inserted with executemany (one pipelined round trip)
_UNNEST_FROM = 3  # rows: fewer are updated one statement each (pipelined too)
_FLOATS = (
    "run_at",
    "queued_at",
    "started_at",
    "finished_at",
    "updated_at",
    "progress",
    "lease_expires_at",
)
#: The columns a transition may change: what update_tasks sets.
_CHANGING = (
    "id",
    "status",
    "attempt",
    "result",
    "error",
    "progress_message",
    "lease_owner",
    "node",
    "worker",
    *_FLOATS,
)
_q = _sql.queries("postgres")
#: A claim as one statement: the rows a claim query picks (and locks), leased.
_LEASE = (
    "WITH picked AS ({claim}) UPDATE trellis_tasks AS t"
    " SET lease_owner = %(owner)s, lease_expires_at = %(lease_until)s"
    " FROM picked WHERE t.id = picked.id RETURNING t.*"
)
_LEASE_QUEUE = _LEASE.format(claim=_q["claim_queue"])
_LEASE_ANY = _LEASE.format(claim=_q["claim_any"])
#: Our own options in a store URL, which libpq must not see.
_OURS = ("pool_min", "pool_max")
_KEYWORD_OPTION = re.compile(r"(?:^|\s)(pool_min|pool_max)\s*=\s*(\S*)")


def parse_url(url: str) -> tuple[str, int, int]:
    """``(conninfo, pool_min, pool_max)`` from a PostgreSQL store URL.

    ``url`` is a libpq URL (``postgresql://…``, ``postgres://…``, ``postgresql:///db`` for
    the Unix socket, ``?host=/socket/dir``, ...) or a keyword/value string (``host=…
    dbname=…``). The conninfo is ``url`` as given, less our own ``pool_min`` and
    ``pool_max``: libpq reads it, so every form it knows works and none is rebuilt here.
    """
    if "://" in url:
        base, _, query = url.partition("?")
        kept, ours = [], {}
        for item in query.split("&") if query else []:
            name, _, value = item.partition("=")
            if unquote(name) in _OURS:
                ours[unquote(name)] = unquote(value)
            else:
                kept.append(item)  # as written: percent-encoding and all
        conninfo = f"{base}?{'&'.join(kept)}" if kept else base
    else:
        ours = {found[1]: found[2] for found in _KEYWORD_OPTION.finditer(url)}
        conninfo = _KEYWORD_OPTION.sub("", url).strip()
    try:
        low, high = int(ours.get("pool_min", 1)), int(ours.get("pool_max", 4))
    except ValueError:
        raise ConfigurationError("pool_min and pool_max must be whole numbers") from None
    if not 0 <= low <= high or high < 1:
        raise ConfigurationError(f"need 0 <= pool_min <= pool_max and pool_max >= 1: {ours}")
    try:
        conninfo_to_dict(conninfo)  # libpq's own parser: what it refuses, it names
    except psycopg.ProgrammingError as exc:
        shown = redact(url)
        # libpq may quote any part of the string: a password too.
        detail = f" ({str(exc).strip()})" if shown == url else ""
        raise ConfigurationError(
            f"bad PostgreSQL URL {shown!r}{detail}: use postgresql://user@host:5432/db, "
            "postgresql:///db?host=/socket/dir or host=… dbname=…"
        ) from None
    return conninfo, low, high


def migrate_sync(url: str, *, from_schema: bool = True) -> list[int]:
    """Bring the database at ``url`` to the latest schema; returns the versions applied."""
    with psycopg.connect(parse_url(url)[0], connect_timeout=10) as conn:
        return migrate_connection(conn, from_schema=from_schema)


async def migrate(url: str) -> list[int]:
    """:func:`migrate_sync` from trio (for ``trellis migrate``)."""
    return await trio.to_thread.run_sync(migrate_sync, url)


def migrate_connection(conn: psycopg.Connection[Any], *, from_schema: bool = True) -> list[int]:
    """Apply what is missing, in one transaction under an advisory lock.

    A fresh database gets ``schema.sql`` (or, with ``from_schema=False``, every migration
    in turn); an existing one gets the migrations it has not seen.
    """
    known = _sql.migrations("postgres")
    with conn.transaction():
        conn.execute(_q["migration_lock"])
        conn.execute(_q["create_migrations"])
        applied = {row[0] for row in conn.execute(_q["applied_migrations"])}
        newer = applied - {migration.version for migration in known}
        if newer:
            raise ConfigurationError(
                f"the database is at migration {max(newer)}, newer than this Trellis "
                f"knows ({len(known)}); upgrade Trellis"
            )
        todo = [migration for migration in known if migration.version not in applied]
        if todo and not applied and from_schema:
            conn.execute(_sql.schema("postgres"))
        else:
            for migration in todo:
                conn.execute(migration.sql)
        for migration in todo:
            conn.execute(
                _q["record_migration"], {"version": migration.version, "name": migration.name}
            )
    return [migration.version for migration in todo]


#: Tries of a store call whose connection turns out dead before it is an outage.
_TRIES = 3


class _PostgresLogic(TaskLogic):
    dialect = "postgres"
    after_every_id = "ffffffff-ffff-ffff-ffff-ffffffffffff"
    before_every_id = "00000000-0000-0000-0000-000000000000"
    json_decoded = True  # psycopg loads jsonb itself

    def __init__(self, origin: str) -> None:
        super().__init__()
        self.origin = origin

    def key(self, task_id: str) -> str | None:
        # Ids are a uuid column: text that is not a canonical UUID names no task (the
        # memory and SQLite stores compare text, so "ABC…" must not find "abc…" here).
        try:
            canonical = str(uuid.UUID(task_id))
        except (ValueError, TypeError, AttributeError):
            return None
        return task_id if canonical == task_id else None

    def claimable(
        self, cur: Cursor, queues: Sequence[str] | None, limit: int, exclude: Sequence[str]
    ) -> list[Task]:
        assert isinstance(cur, psycopg.Cursor)
        skip = list(exclude)
        conn = cur.connection
        # The plan's setting and the claims go in one round trip (reading the rows flushes).
        with _pipeline(cur):
            cur.execute(self.q["claim_plan"])
            if queues is None:
                return self.select(cur, "claim_any", limit=limit, exclude=skip)
            # Each queue walks its own part of the claim index (one cursor each, every
            # statement sent before any is read); the best ``limit`` of them are taken.
            # The rest stay locked until this claim commits, and others skip them meanwhile.
            cursors = []
            for queue in dict.fromkeys(queues):
                each = conn.cursor(row_factory=dict_row)
                each.execute(
                    self.q["claim_queue"], {"queue": queue, "limit": limit, "exclude": skip}
                )
                cursors.append(each)
            found = [self.task(row) for each in cursors for row in each.fetchall()]
        return best_first(found, limit) if len(cursors) > 1 else found

    def claim(
        self,
        cur: Cursor,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        """A claim of one queue, or of all, with no task type limits is one statement
        that picks the tasks as :meth:`claimable` does and leases them as
        ``decisions.claim`` does (it writes nothing else). In a pipelined call it is only
        sent: the list returned is filled once the call's COMMIT is answered, so that the
        claim costs no round trip of its own."""
        named = None if queues is None else set(queues)
        if self.limits or limit <= 0 or (named is not None and len(named) != 1):
            return super().claim(cur, queues, limit, owner, lease_until, now, exclude)
        assert isinstance(cur, psycopg.Cursor)
        leasing = cur.connection.cursor(row_factory=dict_row)
        leasing.execute(self.q["claim_plan"])
        params = {
            "limit": limit,
            "exclude": list(exclude),
            "owner": owner,
            "lease_until": lease_until,
        }
        if named is None:
            leasing.execute(_LEASE_ANY, params)
        else:
            leasing.execute(_LEASE_QUEUE, params | {"queue": named.pop()})
        claimed: list[Task] = []

        def read() -> None:
            with leasing:
                claimed.extend(best_first([self.task(row) for row in leasing.fetchall()], limit))
            self._leased.update((task.id, task) for task in claimed)

        if isinstance(cur, _PipelinedCursor):
            cur.after_commit.append(read)
        else:
            read()
        return claimed

    def events_after(self, cur: Cursor, after: int, limit: int) -> list[Recorded]:
        cur.execute(self.q["event_mark"], {"after": after})
        mark = cur.fetchone()
        if mark is None:  # never written, or pruned since
            cur.execute(self.q["events_after_id"], {"after": after, "limit": limit})
        else:
            params = {"tx": mark["tx"], "after": after, "limit": limit}
            cur.execute(self.q["events_after"], params)
        return [self.recorded(row) for row in cur.fetchall()]

    def lock_type(self, cur: Cursor, name: str) -> None:
        cur.execute(self.q["lock_type"], {"type": name})

    def delete_tasks(self, cur: Cursor, ids: list[str]) -> int:
        cur.execute(self.q["delete"], {"ids": ids})
        deleted = int(cur.fetchone()["n"])
        self.forget_workflows(cur, ids)
        return deleted

    def purge_dead(self, cur: Cursor, ids: list[str]) -> int:
        cur.execute(self.q["purge"], {"ids": ids})
        deleted = int(cur.fetchone()["n"])
        self.forget_workflows(cur, ids)
        return deleted

    def published(self, cur: Cursor, moves: Sequence[Transition], freed: bool = False) -> None:
        if freed or wakes_workers(moves):
            cur.execute(self.q["notify"], {"origin": self.origin})

    # Batches are set-based: COPY for new rows, one UPDATE … FROM unnest(…) for changes.
    # (executemany would send, and the server run, one statement per row.) A few rows go
    # by executemany all the same: pipelined, that is one round trip, where COPY takes two.
    def insert_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        if len(rows) < _COPY_FROM or _in_pipeline(cur):
            cur.executemany(self.q["insert_task"], rows)
        else:
            _copy(cur, self.q["copy_tasks"], rows)

    def writing(self, cur: Cursor, rows: int) -> AbstractContextManager[object]:
        # A few rows: every statement goes in one round trip (COPY cannot be pipelined).
        # In a pipelined call they go with its COMMIT.
        return _pipeline(cur) if rows < _COPY_FROM else nullcontext()

    def insert_events(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        if len(rows) < _COPY_FROM or _in_pipeline(cur):
            cur.executemany(self.q["insert_event"], rows)
        else:
            _copy(cur, self.q["copy_events"], rows)

    def update_tasks(self, cur: Cursor, rows: list[dict[str, Any]]) -> None:
        if len(rows) < _UNNEST_FROM:
            cur.executemany(self.q["update_task"], rows)
            return
        columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in _CHANGING}
        for name in _FLOATS:  # an array holds one type: 1000 (int) and 1000.5 cannot mix
            columns[name] = [None if value is None else float(value) for value in columns[name]]
        cur.execute(self.q["update_tasks"], columns)


class PostgresStore(SqlStore):
    """The store protocol on PostgreSQL (see the module docstring)."""

    #: Calls may run at the same time, each on its own pool connection: the store actor
    #: runs a batch's submissions, outcomes and claims side by side.
    concurrent_calls = True
    _driver_error = psycopg.Error
    _logic: _PostgresLogic

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo, self._pool_min, self._pool_max = parse_url(url)
        self._origin = uuid.uuid4().hex  # our own NOTIFYs carry this; watch() skips them
        self._logic = _PostgresLogic(self._origin)
        self._pool: ConnectionPool | None = None
        self._limiter = trio.CapacityLimiter(self._pool_max)
        self._leader: psycopg.Connection[Any] | None = None
        self._leading: set[str] = set()
        self._leader_limiter = trio.CapacityLimiter(1)
        self._closing = False  # closed: a watch() started now returns at once
        self._watches: set[trio.CancelScope] = set()  # the running watch() calls

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._closing = False
        await trio.to_thread.run_sync(migrate_sync, self.url)
        pool = ConnectionPool(
            self._conninfo,
            min_size=self._pool_min,
            max_size=self._pool_max,
            open=False,
            name="trellis-store",
            timeout=_CONNECTION_WAIT,
            kwargs={"autocommit": True},  # BEGIN and COMMIT are ours: see _run
        )
        try:
            await trio.to_thread.run_sync(partial(pool.open, wait=True, timeout=30.0))
        except BaseException:
            pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        self._closing = True
        for scope in self._watches:  # a running watch() ends
            scope.cancel()
        pool, self._pool = self._pool, None
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._drop_leader, limiter=self._leader_limiter)
            if pool is not None:
                await trio.to_thread.run_sync(pool.close)

    async def _call(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self._run(_Mode.WRITE if write else _Mode.READ, fn, *args, **kwargs)

    async def _call_short(
        self,
        write: bool,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self._run(_Mode.SHORT if write else _Mode.READ, fn, *args, **kwargs)

    async def _run(
        self,
        mode: _Mode,
        fn: Callable[Concatenate[Cursor, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(cursor, …)`` on a pool connection, in a worker thread, as ``mode`` says.

        A connection found dead (the server restarted, an administrator ended the
        session) is replaced and the call tried again — the transaction it was in rolled
        back, so nothing was done. Several may have died at once: a few tries. A call
        that fails once it sent its COMMIT is not tried again (the commit may have
        happened), but for a claim, whose commit is harmless to redo."""
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{redact(self.url)} is not open; call `await store.open()` first")

        def call(conn: psycopg.Connection[Any], attempt: _Attempt) -> T:
            # The pool's connections are in autocommit mode: a read needs no transaction;
            # a write sends BEGIN and COMMIT itself. On an error, leaving the pool's
            # connection block rolls back what was begun.
            if mode is _Mode.READ:
                with conn.cursor(row_factory=dict_row) as cur:
                    return fn(cur, *args, **kwargs)
            if mode is _Mode.WRITE:
                conn.execute(b"BEGIN")
                with conn.cursor(row_factory=dict_row) as cur:
                    result = fn(cur, *args, **kwargs)
                attempt.committing = True
                conn.execute(b"COMMIT")
                return result
            with conn.pipeline() as pipeline:
                began = conn.execute(b"BEGIN")
                with _PipelinedCursor(conn, pipeline) as cur:
                    result = fn(cur, *args, **kwargs)
                if began.pgresult is None and mode is not _Mode.CLAIM:
                    pipeline.sync()  # no answer yet: is the connection alive?
                attempt.committing = True
                conn.execute(b"COMMIT")
            for read in cur.after_commit:  # the pipeline's end brought the answers
                read()
            return result

        def run() -> T:
            for tries in range(1, _TRIES + 1):
                attempt = _Attempt()
                try:
                    with pool.connection() as conn:
                        return call(conn, attempt)
                except PoolTimeout:
                    raise
                except psycopg.OperationalError:
                    self._logic.forget()
                    redo = not attempt.committing or mode is _Mode.CLAIM
                    if not redo or tries == _TRIES:
                        raise
                    pool.check()  # drop every idle connection that died with this one
                except BaseException:
                    self._logic.forget()
                    raise
            raise AssertionError("unreachable")

        return await trio.to_thread.run_sync(run, limiter=self._limiter)

    async def claim(
        self,
        queues: Sequence[str] | None,
        limit: int,
        owner: str,
        lease_until: float,
        now: float,
        exclude: Sequence[str] = (),
    ) -> list[Task]:
        """Pipelined with its BEGIN and COMMIT, whatever its size: a claim of one queue,
        or of all, with no task type limits is one round trip (see
        :meth:`_PostgresLogic.claim`). A claim is tried again even when its commit may
        have happened: what it took is leased to this node, which never hears of it,
        and goes back to the queue when that lease runs out (as when a node dies); it is
        never started twice."""
        if limit <= 0 or (queues is not None and not queues):
            return []
        tasks = await self._run(
            _Mode.CLAIM, self._logic.claim, queues, limit, owner, lease_until, now, exclude
        )
        self._claimed_last = len(tasks)
        return tasks

    # -- wake-ups ------------------------------------------------------------------------
    async def watch(
        self,
        notify: Callable[[], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``notify()`` whenever another store enqueues, promotes or retries work.

        Listens on a dedicated connection (not the pool's); started once ``LISTEN`` is in
        place (or, while the database is down, at once). Notifications are read on the
        event loop, with libpq's non-blocking calls, when the connection's socket is
        readable: no thread wakes for each, though every node hears every node's, its
        own included (skipped by their origin). Cancelling ``watch`` or closing the store
        ends it and its connection. A lost connection is opened again (in a thread, a
        second between tries), and ``notify()`` called once then, since wake-ups may
        have been missed meanwhile.
        """
        if self._closing:
            task_status.started()
            return
        with trio.CancelScope() as scope:
            self._watches.add(scope)
            try:
                conn = await self._listen_connect()
                task_status.started()
                await self._hear(conn, notify)
            finally:
                self._watches.discard(scope)

    async def _listen_connect(self) -> psycopg.Connection[Any] | None:
        """A new LISTEN connection; None while the database cannot be reached."""
        try:
            return await trio.to_thread.run_sync(self._listen_connect_sync)
        except psycopg.OperationalError:
            return None

    def _listen_connect_sync(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
        try:
            conn.execute(_q["listen"])
        except BaseException:
            conn.close()
            raise
        return conn

    async def _hear(self, conn: psycopg.Connection[Any] | None, notify: Callable[[], None]) -> None:
        origin = self._origin.encode()
        try:
            while True:
                while conn is None:
                    await trio.sleep(_RECONNECT_EVERY)
                    conn = await self._listen_connect()
                    if conn is not None:
                        notify()
                pgconn = conn.pgconn
                try:
                    heard = False  # of another store's work, in what libpq has read
                    while (note := pgconn.notifies()) is not None:
                        heard = heard or note.extra != origin
                    if heard:
                        notify()
                    await trio.lowlevel.wait_readable(pgconn.socket)
                    pgconn.consume_input()  # what came; raises if the connection is lost
                    if pgconn.status != ConnStatus.OK:  # lost, yet told no error
                        raise psycopg.OperationalError("the LISTEN connection was lost")
                except psycopg.OperationalError:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    # -- leadership ----------------------------------------------------------------------
    async def try_lead(self, name: str) -> bool:
        """True when this store holds the leadership called ``name`` (now or already).

        A session-level advisory lock on a dedicated connection: it is held until
        :meth:`resign`, :meth:`close`, or the connection dies — which is why a leader calls
        this before each round of work: it checks the connection and, if it was lost, tries
        to take the lock again (another node may have it by then).
        """
        return await trio.to_thread.run_sync(self._try_lead, name, limiter=self._leader_limiter)

    def _try_lead(self, name: str) -> bool:
        conn = self._leader
        try:
            if conn is not None:
                try:
                    conn.execute(_q["ping"])
                except psycopg.OperationalError:
                    self._drop_leader()
                    conn = None
            if conn is not None and name in self._leading:
                return True
            if conn is None:
                conn = self._leader = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=5
                )
            row = conn.execute(_q["try_lead"], {"name": name}).fetchone()
        except psycopg.OperationalError:
            self._drop_leader()
            return False
        if row is not None and row[0]:
            self._leading.add(name)
            return True
        return False

    async def resign(self, name: str) -> None:
        """Give up the leadership ``name`` if this store holds it."""
        await trio.to_thread.run_sync(self._resign, name, limiter=self._leader_limiter)

    def _resign(self, name: str) -> None:
        if name not in self._leading or self._leader is None:
            return
        self._leading.discard(name)
        try:
            self._leader.execute(_q["resign"], {"name": name})
        except psycopg.OperationalError:
            self._drop_leader()  # the lock went with the connection

    def _drop_leader(self) -> None:
        conn, self._leader = self._leader, None
        held = bool(self._leading)
        self._leading.clear()
        if conn is not None:
            if held and not conn.broken:
                # Release now: the server frees a closed session's locks only once its
                # backend has exited, and another node should not wait for that.
                with contextlib.suppress(psycopg.Error):
                    conn.execute(_q["resign_all"])
            conn.close()


def _in_pipeline(cur: Cursor) -> bool:
    """Whether ``cur``'s statements are pipelined: a short call's (no COPY there)."""
    assert isinstance(cur, psycopg.Cursor)
    return cur.connection.pgconn.pipeline_status != PipelineStatus.OFF


def _pipeline(cur: Cursor) -> AbstractContextManager[object]:
    """A pipeline around a few statements, or nothing in a pipelined call: a nested one
    would sync when it ends, a round trip the call's COMMIT can share."""
    assert isinstance(cur, psycopg.Cursor)
    return nullcontext() if _in_pipeline(cur) else cur.connection.pipeline()


class _Mode(enum.Enum):
    """How a store call runs on its pool connection."""

    READ = "read"  # no transaction: each statement sees the latest commits
    WRITE = "write"  # BEGIN, the call's statements (COPY among them), COMMIT
    SHORT = "short"  # BEGIN, the call's statements and COMMIT pipelined
    CLAIM = "claim"  # as SHORT; a commit that may have happened is harmless to redo


@dataclass(slots=True)
class _Attempt:
    """One try of a store call: whether it got as far as sending its COMMIT."""

    committing: bool = False


class _PipelinedCursor(psycopg.Cursor[dict[str, Any]]):
    """A short call's cursor, in a pipeline: fetching rows waits for them by itself; the
    row count of a statement that returns none waits for its answer (a sync), so that the
    code written for a plain cursor runs unchanged."""

    def __init__(self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline) -> None:
        super().__init__(conn, row_factory=dict_row)
        self._syncs = pipeline
        #: What reads answers sent for with the COMMIT, once it is answered.
        self.after_commit: list[Callable[[], None]] = []

    @property
    def rowcount(self) -> int:
        if self.pgresult is None:
            self._syncs.sync()
        return super().rowcount


def _copy(cur: Cursor, statement: str, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` (dicts whose order of keys is the statement's column list)."""
    assert isinstance(cur, psycopg.Cursor)
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(tuple(row.values()))
