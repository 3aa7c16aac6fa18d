"""What the SQLite store adds to the contract: URLs, durability settings, files, plans."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest
import trio

from trellis_actors.errors import ConfigurationError
from trellis_actors.lifecycle import TaskStatus as S
from trellis_actors.stores import (
    MemoryStore,
    NewTask,
    Outcome,
    SqliteStore,
    TaskFilter,
    _sql,
    open_store,
)
from trellis_actors.stores._sqllogic import oldest_first
from trellis_actors.stores.base import ClaimRequest, Work
from trellis_actors.stores.postgres import PostgresStore
from trellis_actors.stores.sqlite import migrate, parse_url


class TestOpenStore:
    def test_each_scheme_gets_its_store(self, tmp_path: Path) -> None:
        """memory://, sqlite:/// and postgresql:// (or postgres://) choose the store."""
        assert isinstance(open_store("memory://"), MemoryStore)
        assert isinstance(open_store(f"sqlite:///{tmp_path}/t.db"), SqliteStore)
        assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)
        assert isinstance(open_store("postgres://u@h/db"), PostgresStore)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql://u:secret@h/db", r"unsupported store URL \(scheme 'mysql'\)"),
            ("tasks.db", r"unsupported store URL \(no scheme\)"),
            ("memory://x", "the memory store takes no path or options"),
            ("sqlite://host/t.db", "bad SQLite URL"),
            ("sqlite:///", "bad SQLite URL"),
            ("sqlite:///t.db?journal=off", "unknown SQLite URL option 'journal'"),
            ("sqlite:///t.db?synchronous=EXTRA", "synchronous='EXTRA' .* is not one of"),
        ],
    )
    def test_a_bad_url_says_what_to_use(self, url: str, message: str) -> None:
        """Unusable URLs are refused up front, without echoing passwords."""
        with pytest.raises(ConfigurationError, match=message) as caught:
            open_store(url)
        assert "secret" not in str(caught.value)


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "path", "level"),
        [
            ("sqlite:///tasks.db", "tasks.db", "NORMAL"),
            ("sqlite:///data/tasks.db", "data/tasks.db", "NORMAL"),
            ("sqlite:////var/lib/tasks.db", "/var/lib/tasks.db", "NORMAL"),
            ("sqlite:///tasks.db?synchronous=full", "tasks.db", "FULL"),
            ("sqlite:///tasks.db?synchronous=OFF", "tasks.db", "OFF"),
            ("sqlite:///:memory:", ":memory:", "NORMAL"),
        ],
    )
    def test_paths_and_synchronous(self, url: str, path: str, level: str) -> None:
        """Three slashes: relative path; four: absolute; NORMAL unless told otherwise."""
        assert parse_url(url) == (path, level)


class TestFile:
    async def test_wal_and_the_chosen_synchronous_level(self, tmp_path: Path) -> None:
        """The file is in WAL mode and the connection syncs as the URL says."""
        store = SqliteStore(f"sqlite:///{tmp_path}/t.db?synchronous=FULL")
        await store.open()
        try:
            assert store._conn is not None
            assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        finally:
            await store.close()
        with sqlite3.connect(tmp_path / "t.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_a_relative_path_is_from_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sqlite:///t.db is t.db in the current directory."""
        monkeypatch.chdir(tmp_path)
        store = open_store("sqlite:///t.db")
        await store.open()
        await store.close()
        assert (tmp_path / "t.db").exists()

    async def test_a_missing_folder_is_a_configuration_error(self, tmp_path: Path) -> None:
        """The message names the path and the fix."""
        store = open_store(f"sqlite:///{tmp_path}/nowhere/t.db")
        with pytest.raises(ConfigurationError, match="check that its folder exists"):
            await store.open()

    async def test_committed_tasks_survive_a_killed_process(self, tmp_path: Path) -> None:
        """A process that enqueues and dies without closing loses nothing."""
        path = tmp_path / "t.db"
        child = (
            "import os, trio\n"
            "from trellis_actors.stores import NewTask, open_store\n"
            "async def main():\n"
            f"    store = open_store('sqlite:///{path}')\n"
            "    await store.open()\n"
            "    (s,), _ = await store.enqueue([NewTask('echo', {'n': 1})], 1000.0)\n"
            "    print(s.task.id, flush=True)\n"
            "    os._exit(0)\n"
            "trio.run(main)\n"
        )
        done = await trio.run_process([sys.executable, "-c", child], capture_stdout=True)
        store = open_store(f"sqlite:///{path}")
        await store.open()
        try:
            task = await store.get(done.stdout.decode().strip())
            assert task is not None and task.payload == {"n": 1}
        finally:
            await store.close()

    async def test_the_store_must_be_open(self, tmp_path: Path) -> None:
        """Calls before open fail clearly; close is idempotent; ping says False."""
        store = open_store(f"sqlite:///{tmp_path}/t.db")
        with pytest.raises(RuntimeError, match=r"is not open; call `await store.open\(\)`"):
            await store.enqueue([NewTask("echo", 1)], 1.0)
        assert await store.ping() is False
        await store.open()
        assert await store.ping() is True
        await store.close()
        await store.close()
        assert await store.ping() is False

    async def test_single_node_always_leads(self, tmp_path: Path) -> None:
        """try_lead is always True for SQLite (and memory)."""
        for store in (open_store(f"sqlite:///{tmp_path}/t.db"), open_store("memory://")):
            assert await store.try_lead("janitor") is True
            await store.resign("janitor")


class TestQueryPlans:
    """Work-finding queries read their index in order: no full scan, no sort."""

    @pytest.mark.parametrize(
        "name",
        [
            "claim_any",
            "claim_queue",
            "due_tasks",
            "next_due_at",
            "list_any",
            "list_by_status",
            "list_by_queue",
            "list_by_type",
            "list_by_key",
            "finished_since",
            "counts",
            "prunable",
            "task_by_key",
            "task_data",
            "events",
        ],
    )
    def test_uses_an_index(self, tmp_path: Path, name: str) -> None:
        """EXPLAIN QUERY PLAN shows an index and no temporary B-tree."""
        plan = plan_of(tmp_path, _sql.queries("sqlite")[name])
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, plan

    @pytest.mark.parametrize(
        "name", ["list_any", "list_by_status", "list_by_queue", "list_by_type", "list_by_key"]
    )
    def test_oldest_first_uses_the_same_index(self, tmp_path: Path, name: str) -> None:
        """A listing turned oldest first reads its index forwards: no sort either."""
        plan = plan_of(tmp_path, oldest_first(_sql.queries("sqlite")[name]))
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, plan


def plan_of(tmp_path: Path, query: str) -> str:
    """``query``'s EXPLAIN QUERY PLAN on a new, migrated database."""
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    try:
        migrate(conn)
        params = {
            "limit": 10,
            "queue": "q",
            "now": 1.0,
            "status": "completed",
            "type": "t",
            "before": "~",
            "id": "x",
            "key": "k",
            "ids": json.dumps(["x"]),
            "exclude": json.dumps(["slow", "busy"]),
            "payload": True,
            "result": False,
            "idempotency_key": "k",
            "schedule_id": None,
            "created_after": None,
            "created_before": None,
            "id_low": "00000000-0000-0000-0000-000000000000",
            "id_high": "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "since": 0.0,
        }
        return " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {query}", params))
    finally:
        conn.close()


class TestCountsKeptInMemory:
    """The store keeps counts by (queue, status) up to date with its own moves, and counts
    afresh after deletes, a rollback or another connection's commit: whatever happens, its
    counts equal a scan of the table."""

    @staticmethod
    def scanned(path: Path) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        with sqlite3.connect(path) as conn:
            query = "SELECT queue, status, count(*) FROM trellis_tasks GROUP BY queue, status"
            for queue, status, count in conn.execute(query):
                found.setdefault(queue, {})[status] = count
        return found

    async def test_counts_follow_every_kind_of_change(self, tmp_path: Path) -> None:
        path = tmp_path / "tasks.db"
        store, other = SqliteStore(f"sqlite:///{path}"), SqliteStore(f"sqlite:///{path}")
        await store.open()
        await other.open()
        try:

            async def agree() -> None:
                assert (await store.counts()).by_queue == self.scanned(path)

            await agree()  # empty, and now known
            new = [NewTask("echo", n, queue=("a" if n % 2 else "b")) for n in range(12)]
            await store.enqueue(new, 1.0)
            await agree()
            claimed = await store.claim(None, 8, "me", 100.0, 2.0)
            await agree()
            starts = [Outcome(t.id, "me", 1, S.RUNNING) for t in claimed[:3]]
            await store.finish(starts, 2.5)
            await agree()
            outcomes = [
                Outcome(t.id, "me", 1, S.FAILED if i % 3 else S.COMPLETED)
                for i, t in enumerate(claimed[:6])
            ]
            moves = await store.finish(outcomes, 3.0)
            await agree()
            assert await store.release([claimed[6].id], "me", 3.5) == []  # back, unmoved
            await agree()
            assert await store.recover_expired(100.0) == []  # claimed[7]: back, unmoved
            await agree()
            assert (await store.counts()).total(S.QUEUED) == 6
            (waiting,) = (await store.list_tasks(TaskFilter(status=S.QUEUED), 1, None)).items
            await store.cancel(waiting.id, 4.0)
            await agree()
            await other.enqueue([NewTask("echo", "elsewhere", queue="c")], 5.0)
            await agree()  # another connection committed
            dead = [m.task.id for m in moves if m.task.status is S.DEAD]
            assert await store.purge(dead[:1]) == 1
            await agree()
            assert await store.prune({S.COMPLETED: 10.0}, 1000) == 2
            await agree()
        finally:
            await other.close()
            await store.close()

    async def test_a_rolled_back_batch_leaves_no_trace_in_the_counts(self, tmp_path: Path) -> None:
        path = tmp_path / "tasks.db"
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        try:
            await store.enqueue([NewTask("echo", 1)], 1.0)
            before = (await store.counts()).by_queue

            def refuse(*args: object, **kwargs: object) -> object:
                raise sqlite3.OperationalError("disk I/O error")

            store._logic.claim = refuse  # type: ignore[method-assign]  # inside the transaction
            work = Work(tasks=[NewTask("echo", 2)], claims=[ClaimRequest(None, 5, "me", 9.0)])
            with pytest.raises(sqlite3.OperationalError):
                await store.apply(work, 2.0)
            del store._logic.claim
            assert (await store.counts()).by_queue == before == self.scanned(path)
        finally:
            await store.close()


class TestOnTheLoop:
    """Short calls run on the event loop, which never waits for another connection's
    lock, and never for a checkpoint."""

    async def test_a_write_while_another_connection_holds_the_lock_waits_in_a_thread(
        self, tmp_path: Path
    ) -> None:
        """A second connection holds the write lock: the store's write neither fails nor
        stops the loop; it is made once the lock is let go."""
        store = SqliteStore(f"sqlite:///{tmp_path}/t.db")
        await store.open()
        other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            written = trio.Event()
            ticks = 0

            async def write() -> None:
                await store.enqueue([NewTask("echo", 1)], 1.0)
                written.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(write)
                # The loop runs on while the write waits (in a thread) for the lock.
                while ticks < 50:
                    await trio.lowlevel.checkpoint()
                    ticks += 1
                assert not written.is_set()
                other.execute("COMMIT")
            assert written.is_set()
            assert (await store.counts()).total(S.QUEUED) == 1
            # ... and the connection went back to not waiting on the loop.
            assert store._conn is not None
            assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        finally:
            other.close()
            await store.close()

    async def test_a_claim_is_short_when_the_last_took_few(self, tmp_path: Path) -> None:
        """A queue of fast tasks asks for many at a time, but an idle node's claim finds
        the one new task: it runs on the loop, unless the last claim took many."""
        store = SqliteStore(f"sqlite:///{tmp_path}/t.db")
        await store.open()
        assert store._conn is not None
        threads: set[int] = set()
        store._conn.set_trace_callback(lambda _: threads.add(threading.get_ident()))
        loop = threading.get_ident()

        async def claim(limit: int, *, in_apply: bool = False) -> int:
            threads.clear()
            if in_apply:
                request = ClaimRequest(None, limit, "me", 60.0)
                done = await store.apply(Work([], [], [request]), 1.0)
                return len(done.claimed[0])
            return len(await store.claim(None, limit, "me", 60.0, 1.0))

        try:
            await store.enqueue([NewTask("echo", 1)], 1.0)
            assert await claim(200) == 1
            assert threads == {loop}
            await store.enqueue([NewTask("echo", n) for n in range(40)], 1.0)
            assert await claim(200, in_apply=True) == 40  # guessed short: on the loop, once
            assert threads == {loop}
            await store.enqueue([NewTask("echo", n) for n in range(40)], 1.0)
            assert await claim(200) == 40  # the last took 40: in a thread
            assert loop not in threads
            assert await claim(200, in_apply=True) == 0  # the last took 40 still
            assert loop not in threads
            assert await claim(200) == 0  # the last took none
            assert threads == {loop}
        finally:
            await store.close()

    async def test_a_claim_that_finds_nothing_takes_no_write_lock(self, tmp_path: Path) -> None:
        """After a claim that took nothing, a claim reads first: finding nothing, it neither
        waits for another process's write transaction nor makes one wait (an idle node is
        woken by every commit of a producer beside it, of tasks it may not work). Finding
        a task, it claims it as before."""
        path = tmp_path / "t.db"
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        try:
            with closing(sqlite3.connect(path, isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")  # a producer writing
                with trio.fail_after(10):  # a bound: a claim that waited would fail at 5 s
                    assert await store.claim(["default"], 4, "me", 60.0, 1.0) == []
                    request = ClaimRequest(["default"], 4, "me", 60.0)
                    done = await store.apply(Work([], [], [request, request]), 1.0)
                    assert done.claimed == [[], []]
                other.execute("COMMIT")
            await store.enqueue([NewTask("echo", 1, queue="elsewhere")], 1.0)
            assert await store.claim(["default"], 4, "me", 60.0, 1.0) == []
            [new], _ = await store.enqueue([NewTask("echo", 2)], 1.0)
            [task] = await store.claim(["default"], 4, "me", 60.0, 1.0)
            assert task.id == new.task.id and task.lease_owner == "me"
        finally:
            await store.close()

    async def test_the_watch_checkpoints_the_wal_and_commits_do_not(self, tmp_path: Path) -> None:
        """While the watch runs, the store's commits leave the WAL to it, and it copies
        the WAL into the database file; after it, commits checkpoint again."""
        path = tmp_path / "t.db"
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()

        def autocheckpoint() -> int:
            assert store._conn is not None
            return int(store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

        def checkpointed() -> int:
            """Tasks in the database file alone (a copy of it without its WAL)."""
            copy = tmp_path / "copy.db"
            copy.write_bytes(path.read_bytes())
            with closing(sqlite3.connect(copy)) as conn:
                try:
                    return int(conn.execute("SELECT count(*) FROM trellis_tasks").fetchone()[0])
                except sqlite3.DatabaseError:  # the header page is not in the file yet
                    return 0

        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(store.watch, lambda: None)
                assert autocheckpoint() == 0
                for n in range(100):
                    await store.enqueue([NewTask("echo", n)], 1.0)
                with trio.fail_after(10):
                    # The watch thread tells nobody when it checkpoints: look until it has.
                    while checkpointed() < 64:  # noqa: ASYNC110 (no event to wait on)
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            assert autocheckpoint() == 1000
        finally:
            await store.close()
