"""``trellis_actors.sqlite``: a second process writes tasks into a node's SQLite file and
the node starts them at once (``SqliteStore.watch``); or a caller's own transaction holds
the task until it commits."""

from __future__ import annotations

import math
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pydantic
import pytest
import trio

from trellis_actors import (
    App,
    ConfigurationError,
    TaskContext,
    TaskStatus,
    ValidationError,
    open_runtime,
    sqlite,
)
from trellis_actors.lifecycle import NewTask
from trellis_actors.stores._filewatch import FileWatch
from trellis_actors.stores.sqlite import PRODUCER_AUTOCHECKPOINT, SqliteStore, _Sightings

app = App()


class Receipt(pydantic.BaseModel):
    order_id: int


@app.task
async def send_receipt(ctx: TaskContext, payload: Receipt) -> int:
    return payload.order_id


@app.task
async def note(ctx: TaskContext, payload: Any) -> Any:
    return payload


#: A node that polls once a minute: only the watch starts a task within the tests' bounds.
SLOW_POLL = 60.0

#: What the producer process runs: one task into the file named by argv[1]; prints its id.
PRODUCER = """
import sys
from trellis_actors import sqlite
print(sqlite.enqueue(sys.argv[1], "note", {"from": "another process"}, idempotency_key=sys.argv[2]))
"""


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "tasks.db")


@pytest.fixture(autouse=True)
def closed() -> Any:
    """Each test ends with this thread's cached producer connections closed."""
    yield
    sqlite.close()


def stored(path: str) -> list[tuple[Any, ...]]:
    """``(id, type, queue, status, events)`` of every stored task, oldest first."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT t.id, type, queue, status, count(e.id) FROM trellis_tasks t"
            " LEFT JOIN trellis_events e ON e.task_id = t.id GROUP BY t.id ORDER BY t.id"
        ).fetchall()
    finally:
        conn.close()


async def produce_elsewhere(path: str, key: str = "k1") -> str:
    """Enqueue one task from a second Python process; its id."""
    done = await trio.run_process(
        [sys.executable, "-c", PRODUCER, path, key], capture_stdout=True, capture_stderr=True
    )
    return done.stdout.decode().strip()


class TestAnotherProcess:
    async def test_node_starts_the_task_long_before_the_next_poll(self, db: str) -> None:
        """A node polling once a minute runs a task another process wrote, at once: the
        watch saw the file change (a bound far under the poll interval, not a timing)."""
        async with open_runtime(app, store=f"sqlite:///{db}", poll_interval=SLOW_POLL) as rt:
            for key in ("first", "second"):  # the watch goes on after its first wake-up
                task_id = await produce_elsewhere(db, key)
                with trio.fail_after(SLOW_POLL / 4):
                    done = await rt.wait(task_id)
                assert done.status is TaskStatus.COMPLETED
                assert done.result == {"from": "another process"}

    async def test_producer_may_start_before_the_node(self, db: str) -> None:
        """A missing file is created and migrated as a node would; the node then runs what
        waited, and a repeat of the key returns the same id."""
        first = await produce_elsewhere(db)
        assert await produce_elsewhere(db) == first
        async with open_runtime(app, store=f"sqlite:///{db}", poll_interval=SLOW_POLL) as rt:
            with trio.fail_after(SLOW_POLL / 4):
                assert (await rt.wait(first)).status is TaskStatus.COMPLETED


class TestPath:
    def test_task_with_its_events_and_url_form(self, db: str) -> None:
        """A path or a sqlite:/// URL: each call commits the task and its two events."""
        one = sqlite.enqueue(db, send_receipt, Receipt(order_id=1))
        two = sqlite.enqueue(f"sqlite:///{db}?synchronous=FULL", "note", queue="mail")
        assert stored(db) == [(one, "send_receipt", "default", "queued", 2),
                              (two, "note", "mail", "queued", 2)]  # fmt: skip

    def test_one_task_is_written_as_a_store_writes_it(self, db: str) -> None:
        """A lone task (written without the batch's steps) has the row and events a store
        gives it: read back through a store, due at once or delayed."""
        due = sqlite.enqueue(db, "note", {"n": 1}, queue="mail", priority=2, timeout=5)
        later = sqlite.enqueue(db, "echo", None, delay=3600)

        async def read() -> list[Any]:
            store = SqliteStore(f"sqlite:///{db}")
            await store.open()
            try:
                return [(await store.get(i), await store.events(i)) for i in (due, later)]
            finally:
                await store.close()

        (task, events), (delayed, delayed_events) = trio.run(read)
        assert (task.status, task.queue, task.priority, task.timeout, task.payload) == (
            TaskStatus.QUEUED, "mail", 2, 5.0, {"n": 1}
        )  # fmt: skip
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, TaskStatus.PENDING), (TaskStatus.PENDING, TaskStatus.QUEUED)
        ]  # fmt: skip
        assert task.queued_at == task.created_at == events[1].at
        assert delayed.status is TaskStatus.PENDING
        assert [(e.from_status, e.to_status) for e in delayed_events] == [
            (None, TaskStatus.PENDING)
        ]

    def test_idempotency_key_repeat_returns_the_same_id(self, db: str) -> None:
        first = sqlite.enqueue(db, "echo", 1, idempotency_key="order-7")
        assert sqlite.enqueue(db, "echo", 2, idempotency_key="order-7") == first
        assert [row[0] for row in stored(db)] == [first]

    def test_validation_names_the_field_and_writes_nothing(self, db: str) -> None:
        sqlite.enqueue(db, "echo")  # the file exists and is migrated
        with pytest.raises(ValidationError, match=r"payload\.order_id") as caught:
            sqlite.enqueue(db, send_receipt, {"order_id": "seven"})  # type: ignore[misc]
        assert caught.value.field == "payload.order_id"
        with pytest.raises(ValidationError, match="unknown field 'colour'"):
            sqlite.enqueue(db, "echo", colour="red")  # type: ignore[call-overload]
        with pytest.raises(ValidationError, match=r"item 1"):
            sqlite.enqueue_many(db, [{"type": "echo"}, {"type": "echo", "priority": "x"}])
        assert len(stored(db)) == 1

    def test_hostile_options_and_batches_name_the_field_and_write_nothing(self, db: str) -> None:
        """Options named as the checks' own arguments (``now``, ``app``, ``type``), and
        batches that are no list of mappings with text keys: ValidationError naming the
        field, not a TypeError from a call."""
        sqlite.enqueue(db, "echo")
        for name in ("now", "app", "type", "payload"):
            with pytest.raises(ValidationError, match=f"unknown field '{name}'") as caught:
                sqlite.enqueue(db, "echo", 1, **{name: 1})  # type: ignore[call-overload]
            assert caught.value.field == name
        batches: list[tuple[Any, str]] = [
            (None, "items"),
            (5, "items"),
            ({"type": "echo"}, "items"),
            ([{"type": "echo"}, 1], "[1]"),
            ([{"type": "echo", 1: 2}], "[0]"),
            ([{"type": "echo", "now": 1}], "[0].now"),
        ]
        for items, field in batches:
            with pytest.raises(ValidationError) as refused:
                sqlite.enqueue_many(db, items)
            assert refused.value.field == field, (items, refused.value)
        assert len(stored(db)) == 1

    def test_enqueue_many_in_order(self, db: str) -> None:
        ids = sqlite.enqueue_many(db, [{"type": "echo", "payload": n} for n in range(20)])
        assert [row[0] for row in stored(db)] == ids

    def test_a_batch_mixing_empty_and_set_columns_is_stored_whole(self, db: str) -> None:
        """Rows written in one statement, where a column is empty in some rows and set in
        others (or empty in all: written as NULL, not bound), read back as given."""
        items: list[dict[str, Any]] = [
            {"type": "echo", "payload": n, "timeout": 5 if n % 3 == 0 else None}
            | ({"delay": 3600} if n % 4 == 0 else {})
            for n in range(21)  # chunks of 16, 4 and 1
        ]
        ids = sqlite.enqueue_many(db, items)

        async def read() -> list[Any]:
            store = SqliteStore(f"sqlite:///{db}")
            await store.open()
            try:
                return [await store.get(i) for i in ids]
            finally:
                await store.close()

        tasks = trio.run(read)
        assert [(t.payload, t.timeout, t.status, t.started_at, t.dead_letter) for t in tasks] == [
            (n, 5.0 if n % 3 == 0 else None,
             TaskStatus.PENDING if n % 4 == 0 else TaskStatus.QUEUED, None, True)
            for n in range(21)
        ]  # fmt: skip

    def test_a_file_with_other_tables_is_refused_untouched(self, tmp_path: Path) -> None:
        other = str(tmp_path / "app.db")
        conn = sqlite3.connect(other)
        conn.execute("CREATE TABLE orders (id INTEGER)")
        conn.commit()
        conn.close()
        with pytest.raises(ConfigurationError, match="is not a Trellis database: it has other"):
            sqlite.enqueue(other, "echo")
        conn = sqlite3.connect(other)
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        conn.close()
        assert tables == [("orders",)]

    def test_a_file_that_is_not_sqlite_is_refused(self, tmp_path: Path) -> None:
        junk = tmp_path / "notes.txt"
        junk.write_bytes(b"shopping list: eggs, milk\n" * 200)
        with pytest.raises(ConfigurationError, match="is not a Trellis database: the file is"):
            sqlite.enqueue(junk, "echo")

    @pytest.mark.parametrize("url", ["postgresql://db.example/tasks", "memory://"])
    def test_another_stores_url_is_refused_and_names_the_way_in(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)  # where a URL taken for a path would create a folder
        with pytest.raises(ConfigurationError, match="is not a SQLite database"):
            sqlite.enqueue(url, "echo")
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        "target",
        [
            None,
            5,
            b"/tmp/tasks.db",
            ["tasks.db"],
            "tasks\0.db",
            "tasks\ud800.db",
            "sqlite:///x%00.db",
        ],
        ids=["none", "int", "bytes", "list", "nul", "surrogate", "url-nul"],
    )
    def test_what_cannot_name_a_file_is_refused(
        self, target: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ConfigurationError, match=r"must be a path|cannot name a file"):
            sqlite.enqueue(target, "echo")
        assert list(tmp_path.iterdir()) == []

    def test_memory_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="private to one connection"):
            sqlite.enqueue(":memory:", "echo")


class TestCallersConnection:
    def test_rollback_leaves_no_task_and_commit_keeps_it(self, db: str) -> None:
        """In the caller's transaction: nothing is committed or rolled back for it."""
        sqlite.enqueue(db, "echo")  # a Trellis database
        conn = sqlite3.connect(db)  # the default: sqlite3 opens a transaction on writes
        try:
            gone = sqlite.enqueue(conn, "echo", "rolled back")
            assert conn.in_transaction
            conn.rollback()
            kept = sqlite.enqueue(conn, send_receipt, Receipt(order_id=3))
            assert conn.in_transaction
            conn.commit()
        finally:
            conn.close()
        ids = [row[0] for row in stored(db)]
        assert kept in ids and gone not in ids

    def test_autocommit_connection_writes_its_own_transaction(self, db: str) -> None:
        sqlite.enqueue(db, "echo")
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            task_id = sqlite.enqueue(conn, "echo", 1)
            assert not conn.in_transaction
        finally:
            conn.close()
        assert task_id in [row[0] for row in stored(db)]

    def test_a_database_without_the_schema_says_so(self, tmp_path: Path) -> None:
        conn = sqlite3.connect(tmp_path / "empty.db")
        try:
            with pytest.raises(ConfigurationError, match="has no Trellis tables"):
                sqlite.enqueue(conn, "echo")
        finally:
            conn.close()

    async def test_node_runs_what_the_caller_committed(self, db: str) -> None:
        async with open_runtime(app, store=f"sqlite:///{db}", poll_interval=SLOW_POLL) as rt:

            def in_transaction() -> str:
                conn = sqlite3.connect(db)
                try:
                    with conn:  # commits
                        return sqlite.enqueue(conn, send_receipt, Receipt(order_id=9))
                finally:
                    conn.close()

            task_id = await trio.to_thread.run_sync(in_transaction)
            with trio.fail_after(SLOW_POLL / 4):
                done = await rt.wait(task_id)
        assert done.result == 9


@asynccontextmanager
async def watched(db: str, notify: Callable[[], None]) -> AsyncIterator[SqliteStore]:
    """A store whose watch runs (calling ``notify``) until the block ends."""
    store = SqliteStore(f"sqlite:///{db}")
    await store.open()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.watch, notify)
            yield store
            nursery.cancel_scope.cancel()
    finally:
        await store.close()


@asynccontextmanager
async def looked_at_by_hand(
    db: str,
) -> AsyncIterator[tuple[SqliteStore, _Sightings, list[str]]]:
    """A store whose sightings a test looks at by hand, in a known order, instead of a
    watch thread; the list collects the queue's wake-ups."""
    store = SqliteStore(f"sqlite:///{db}")
    await store.open()
    wakes: list[str] = []
    sightings = await trio.to_thread.run_sync(_Sightings.open, db, lambda: wakes.append("w"))
    try:
        store._sightings = sightings
        await store._call(False, sightings.writer_saw)
        yield store, sightings, wakes
    finally:
        store._sightings = None
        sightings.close()
        await store.close()


class TestWatch:
    async def test_wakes_on_another_connections_commit(self, db: str) -> None:
        """watch() calls notify after another connection commits, and ends with the store."""
        woken = trio.Event()
        async with watched(db, woken.set):
            await trio.to_thread.run_sync(lambda: sqlite.enqueue(db, "echo"))
            with trio.fail_after(10):
                await woken.wait()

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
    async def test_the_stores_own_commits_do_not_wake_the_watch_thread(
        self, db: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The watch thread is told of writes to the WAL so as to see other processes'
        commits: the store's own (every submission's) must not wake it, since each
        wake-up costs the node CPU on two threads. Another process's commit still does."""
        told: list[bool] = []
        waited = trio.Event()
        wait_for = [math.inf]  # waited is set once the thread has waited this many times
        wait = FileWatch.wait

        def counted(watch: FileWatch, timeout: float) -> bool:
            written = wait(watch, timeout)
            told.append(written)
            if len(told) >= wait_for[0]:
                trio.from_thread.run_sync(waited.set)
            return written

        monkeypatch.setattr(FileWatch, "wait", counted)
        woken = trio.Event()
        async with watched(db, woken.set) as store:
            for _ in range(30):
                await store.enqueue([NewTask("note", None)], 1.0)
                await trio.to_thread.run_sync(lambda: None)  # the watch thread may run
            wait_for[0] = len(told) + 2  # a write told by now ends the next wait at once
            with trio.fail_after(10):
                await waited.wait()
            assert True not in told
            await trio.to_thread.run_sync(lambda: sqlite.enqueue(db, "note"))
            with trio.fail_after(10):
                await woken.wait()
            assert True in told

    async def test_close_ends_the_watch(self, db: str) -> None:
        """Closing the store ends a running watch: no thread is left (the leak check)."""
        store = SqliteStore(f"sqlite:///{db}")
        await store.open()
        with trio.fail_after(10):  # a bound: closing must end the watch, not hang
            async with trio.open_nursery() as nursery:
                await nursery.start(store.watch, lambda: None)
                await store.close()

    async def test_own_commits_are_not_news_and_others_are_not_lost(self, db: str) -> None:
        """The store's own commits do not wake its queue; another process's commit does,
        whether the watch sees it or the store's next write does (looks made by hand
        here, in a known order, instead of by the watch thread)."""
        async with looked_at_by_hand(db) as (store, sightings, wakes):
            elsewhere = partial(trio.to_thread.run_sync, lambda: sqlite.enqueue(db, "note"))
            await store.enqueue([NewTask("note", None)], 1.0)  # our own commit
            assert not sightings.look()
            await elsewhere()
            assert sightings.look()  # the watch thread would wake the queue now
            await elsewhere()  # another process commits, then we do, before any look
            await store.enqueue([NewTask("note", None)], 1.0)
            assert wakes == ["w"]  # the store's write saw it
            assert not sightings.look()

    async def test_a_commit_the_watch_told_of_wakes_nobody_again(self, db: str) -> None:
        """Another process commits and the watch tells of it: the store's next write,
        which sees that commit too, does not wake the queue a second time (for a claim
        that would find nothing)."""
        async with looked_at_by_hand(db) as (store, sightings, wakes):
            await trio.to_thread.run_sync(lambda: sqlite.enqueue(db, "note"))
            assert sightings.look()  # the watch thread wakes the queue
            await store.enqueue([NewTask("note", None)], 1.0)
            assert wakes == []
            assert not sightings.look()

    async def test_a_commit_just_after_the_stores_own_is_not_lost(self, db: str) -> None:
        """Another process commits between the store's COMMIT and its absorbing look: the
        look takes that commit in with the store's own, and the writer's own data_version
        (which the store's commit does not change) still wakes the queue, at once rather
        than at the queue's next poll."""
        async with looked_at_by_hand(db) as (store, sightings, wakes):
            absorb = sightings.absorb

            def other_commit_first(*args: Any) -> None:
                sqlite.enqueue(db, "note")  # in the store's thread, after its COMMIT
                absorb(*args)

            sightings.absorb = other_commit_first  # type: ignore[method-assign]  # the gap
            await store.enqueue([NewTask("note", None)], 1.0)
            sightings.absorb = absorb  # type: ignore[method-assign]
            assert wakes == ["w"]
            assert not sightings.look()


class TestCheckpoints:
    async def test_the_wal_stays_bounded_while_a_producer_and_the_node_take_turns(
        self, db: str
    ) -> None:
        """A producer's commit and the node's claim of it come right after each other, so
        the WAL is never wholly copied back when a writer starts, and SQLite writes on at
        its end instead of starting it over: the file grew by every task, and each
        producer's commit paid a checkpoint. The node's watch starts it over once it is
        long (``RESTART``), so it stays within the producers' checkpoint threshold."""
        async with open_runtime(app, store=f"sqlite:///{db}", poll_interval=SLOW_POLL) as rt:
            for n in range(400):
                task_id = await trio.to_thread.run_sync(partial(sqlite.enqueue, db, note, {"n": n}))
                with trio.fail_after(SLOW_POLL / 4):
                    assert (await rt.wait(task_id)).result == {"n": n}
            wal = (await trio.Path(db + "-wal").stat()).st_size  # its largest: it never shrinks
        conn = sqlite3.connect(db)
        try:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
        assert wal / (page + 24) < PRODUCER_AUTOCHECKPOINT  # frames: a header and a page each
