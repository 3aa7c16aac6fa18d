"""What the PostgreSQL store adds to the contract: several nodes on one database."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from psycopg import pq

from trellis_actors.errors import ConfigurationError, ValidationError
from trellis_actors.lifecycle import Task, TaskEvent, TaskStatus
from trellis_actors.stores import NewTask, Outcome, TaskFilter, _sql
from trellis_actors.stores._sqllogic import TaskLogic
from trellis_actors.stores.base import ClaimRequest, Work
from trellis_actors.stores.postgres import _LEASE_ANY, _LEASE_QUEUE, PostgresStore, parse_url

NOW = 1_000.0
LEASE = {"owner": "node", "lease_until": NOW + 60}  # a lease statement's own parameters


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def backends(url: str, query_like: str = "%") -> list[int]:
    """Process ids of the other sessions on the test database."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query LIKE %s",
            (query_like,),
        ).fetchall()
    return [pid for (pid,) in rows]


async def no_listener(url: str) -> None:
    """Waits until no LISTEN session is left: a closed session's server process ends a
    moment after the client has closed it (there is nothing to wait on but the view)."""
    with trio.fail_after(10):
        while backends(url, "LISTEN%"):  # noqa: ASYNC110 (another process's state)
            await trio.sleep(0.01)


def lock_holders(url: str) -> list[int]:
    """Process ids of the sessions holding advisory locks."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory'").fetchall()
    return [pid for (pid,) in rows]


def terminate(url: str, pids: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


class Wakeups:
    """A notify() callback that counts calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.calls = 0
        self._event = trio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self._event.set()

    async def next(self) -> None:
        with trio.fail_after(10):
            await self._event.wait()
        self._event = trio.Event()


async def store_tasks(store: PostgresStore) -> list[Task]:
    """Every task in the store (a few hundred at most)."""
    page = await store.list_tasks(TaskFilter(), 1000, None)
    assert page.next_cursor is None
    return page.items


@asynccontextmanager
async def watching(store: PostgresStore) -> AsyncIterator[Wakeups]:
    wakeups = Wakeups()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.watch, wakeups)
        yield wakeups
        nursery.cancel_scope.cancel()


class TestCopyColumns:
    @pytest.mark.parametrize(
        ("query", "row"),
        [
            ("copy_tasks", TaskLogic.row(Task("id", "echo", "default", None, TaskStatus.QUEUED))),
            ("copy_events", TaskLogic.event_row(TaskEvent("id", None, TaskStatus.PENDING, 0, 0))),
        ],
    )
    def test_copy_lists_the_columns_in_row_order(self, query: str, row: dict[str, Any]) -> None:
        """COPY writes values by position: its column list must be the row's key order."""
        text = _sql.queries("postgres")[query]
        columns = [name.strip() for name in text[text.index("(") + 1 : text.index(")")].split(",")]
        assert columns == list(row)


class TestUrls:
    def test_pool_options_are_ours(self) -> None:
        """pool_min and pool_max are taken out; other options go to libpq."""
        assert parse_url("postgresql://u@h/db?pool_max=8&sslmode=disable&pool_min=2") == (
            "postgresql://u@h/db?sslmode=disable",
            2,
            8,
        )
        assert parse_url("postgres://h/db") == ("postgres://h/db", 1, 4)

    @pytest.mark.parametrize("query", ["pool_max=0", "pool_min=5&pool_max=2", "pool_max=x"])
    def test_bad_pool_options(self, query: str) -> None:
        """Impossible pool sizes are refused."""
        with pytest.raises(ConfigurationError, match="pool_m"):
            parse_url(f"postgresql://u:secret@h/db?{query}")


@pytest.mark.postgres
class TestWatch:
    async def test_another_stores_work_wakes_the_watcher(self, pg_url: str) -> None:
        """Enqueue, promote and retry on one node each call notify() on another."""
        async with opened(pg_url) as mine, opened(pg_url) as theirs, watching(mine) as woken:
            await theirs.enqueue([NewTask("echo", 1, run_at=NOW + 10)], NOW)
            await woken.next()
            await theirs.promote_due(NOW + 10, 10)
            await woken.next()
            (claimed,) = await theirs.claim(None, 1, "w", NOW + 60, NOW + 11)
            outcome = Outcome(claimed.id, "w", 1, TaskStatus.RETRYING, retry_at=NOW + 20)
            await theirs.finish([outcome], NOW + 12)
            await woken.next()

    @pytest.mark.parametrize("give_back", ["release", "recover_expired"])
    async def test_a_claim_given_back_wakes_the_watcher(self, pg_url: str, give_back: str) -> None:
        """A claimed task that another node releases, or whose lease it recovers, is work
        ready again: the watcher hears of it, as it did when such a task was running."""
        async with opened(pg_url) as mine, opened(pg_url) as theirs, watching(mine) as woken:
            await theirs.enqueue([NewTask("echo", 1)], NOW)
            await woken.next()
            (claimed,) = await theirs.claim(None, 1, "w", NOW + 60, NOW)
            if give_back == "release":
                assert await theirs.release([claimed.id], "w", NOW + 1) == []
            else:
                assert await theirs.recover_expired(NOW + 60) == []
            with trio.move_on_after(2):
                await woken.next()
            assert woken.calls == 2

    async def test_notifications_name_their_sender(self, pg_url: str) -> None:
        """NOTIFY carries the sending store's origin, which its own watch() ignores."""
        async with opened(pg_url) as store:
            with psycopg.connect(pg_url, autocommit=True) as listener:
                listener.execute("LISTEN trellis_work")
                await store.enqueue([NewTask("echo", 1)], NOW)
                (task,) = await store.claim(None, 1, "w", NOW + 60, NOW)  # nothing new: silent
                start = Outcome(task.id, "w", 1, TaskStatus.RUNNING)
                await store.finish([start], NOW)  # nor does a start
                notes = list(listener.notifies(timeout=0.5))
        assert [(n.channel, n.payload) for n in notes] == [("trellis_work", store._origin)]

    async def test_cancelling_watch_leaves_no_listener(self, pg_url: str) -> None:
        """The LISTEN session ends with watch(), and close() ends a running watch."""
        async with opened(pg_url) as store:
            async with watching(store):
                pass
            await no_listener(pg_url)
            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    await nursery.start(store.watch, lambda: None)
                    assert len(backends(pg_url, "LISTEN%")) == 1
                    await store.close()  # watch() returns by itself
            await no_listener(pg_url)

    async def test_listening_holds_no_worker_thread(self, pg_url: str) -> None:
        """Notifications are read on the event loop: every node hears every node's, its
        own included, and none of them wakes a thread (whose hop to the loop also came
        before each claim); nor does the watch hold one of trio's worker threads."""
        threads = trio.to_thread.current_default_thread_limiter()
        async with opened(pg_url) as mine, opened(pg_url) as theirs, watching(mine) as woken:
            await theirs.enqueue([NewTask("echo", 1)], NOW)
            await woken.next()
            await mine.enqueue([NewTask("echo", 2)], NOW)  # its own: heard, not told
            assert threads.borrowed_tokens == 0
            await theirs.enqueue([NewTask("echo", 3)], NOW)
            await woken.next()
            assert woken.calls == 2

    async def test_a_lost_listener_reconnects(self, pg_url: str) -> None:
        """When the LISTEN session is killed, watch() reconnects and wakes its caller."""
        async with opened(pg_url) as store, watching(store) as woken:
            terminate(pg_url, backends(pg_url, "LISTEN%"))
            await woken.next()


@pytest.mark.postgres
class TestLeadership:
    async def test_one_leader_at_a_time(self, pg_url: str) -> None:
        """The lock passes on when the leader resigns or closes."""
        async with opened(pg_url) as a, opened(pg_url) as b:
            assert await a.try_lead("janitor") is True
            assert await a.try_lead("janitor") is True  # still leading
            assert await b.try_lead("janitor") is False
            assert await b.try_lead("scheduler") is True  # another name, another lock
            await a.resign("janitor")
            assert await b.try_lead("janitor") is True
            assert await a.try_lead("janitor") is False
            await b.close()
            assert await a.try_lead("janitor") is True

    async def test_a_leader_whose_session_died_finds_out(self, pg_url: str) -> None:
        """The lock dies with the session; the next try_lead sees it and competes again."""
        async with opened(pg_url) as a, opened(pg_url) as b:
            assert await a.try_lead("janitor") is True
            terminate(pg_url, lock_holders(pg_url))
            assert await b.try_lead("janitor") is True
            assert await a.try_lead("janitor") is False


@pytest.mark.postgres
class TestConnections:
    async def test_store_survives_killed_backends(self, pg_url: str) -> None:
        """After pg_terminate_backend on every session, calls work on fresh connections."""
        async with opened(pg_url) as store:
            (submitted,), _ = await store.enqueue([NewTask("echo", 1)], NOW)
            terminate(pg_url, backends(pg_url))
            assert len(await store.claim(None, 5, "w", NOW + 60, NOW)) == 1
            assert (await store.get(submitted.task.id)) is not None
            assert await store.ping() is True

    async def test_a_write_on_a_connection_that_died_idle_runs_again(self, pg_url: str) -> None:
        """A short write (BEGIN, its statements and COMMIT pipelined) on a connection the
        server ended while it was idle runs again on a new one, and stores its task once."""
        async with opened(one_connection(pg_url)) as store:
            await store.enqueue([NewTask("echo", 1)], NOW)
            terminate(pg_url, backends(pg_url))
            await store.enqueue([NewTask("echo", 2)], NOW)
            assert sorted(task.payload for task in await store_tasks(store)) == [1, 2]

    async def test_a_failed_transaction_is_retried_on_a_new_connection(self, pg_url: str) -> None:
        """A connection lost mid-transaction: the call runs again on a new connection, a
        few times at most (several may have died at once)."""
        tries: list[int] = []

        def lose_first_connection(cur: Any) -> int:
            tries.append(1)
            if len(tries) == 1:
                cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            cur.execute("SELECT 42 AS n")
            return int(cur.fetchone()["n"])

        def always_lost(cur: Any) -> None:
            tries.append(1)
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        async with opened(pg_url) as store:
            call: Callable[..., Any] = store._call
            assert await call(True, lose_first_connection) == 42
            assert len(tries) == 2
            tries.clear()
            with pytest.raises(psycopg.OperationalError):
                await call(True, always_lost)
            assert len(tries) == 3

    async def test_nodes_never_claim_the_same_task(self, pg_url: str) -> None:
        """Concurrent claims from two stores split the work without overlap."""
        claimed: dict[str, list[str]] = {"a": [], "b": []}
        async with opened(pg_url) as a, opened(pg_url) as b:
            await a.enqueue([NewTask("echo", i) for i in range(200)], NOW)

            async def drain(name: str, store: PostgresStore) -> None:
                while tasks := await store.claim(None, 7, name, NOW + 60, NOW):
                    claimed[name] += [task.id for task in tasks]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, "a", a)
                nursery.start_soon(drain, "b", b)
            everything = claimed["a"] + claimed["b"]
            assert len(everything) == len(set(everything)) == 200
            for name, store in (("a", a), ("b", b)):
                mine = [task.id for task in await store_tasks(store) if task.lease_owner == name]
                assert sorted(mine) == sorted(claimed[name])
            assert (await a.counts()).total(TaskStatus.QUEUED) == 200

    async def test_a_cursor_must_be_a_task_id(self, pg_url: str) -> None:
        """Task ids are UUIDs here; any other cursor is a validation error."""
        async with opened(pg_url) as store:
            with pytest.raises(ValidationError, match="cursor 'page-2' is not a task id"):
                await store.list_tasks(TaskFilter(), 10, "page-2")

    async def test_the_store_must_be_open(self, pg_url: str) -> None:
        """Calls before open fail clearly, without the password."""
        store = PostgresStore(pg_url)
        with pytest.raises(RuntimeError, match="is not open"):
            await store.get("x")
        assert await store.ping() is False


@pytest.mark.postgres
class TestClaimPlan:
    @pytest.mark.parametrize(
        ("query", "params"),
        [
            ("claim_any", {"limit": 32, "exclude": ["slow"]}),
            ("claim_queue", {"queue": "default", "limit": 32, "exclude": []}),
            ("lease_any", {"limit": 32, "exclude": ["slow"], **LEASE}),
            ("lease_queue", {"queue": "default", "limit": 32, "exclude": [], **LEASE}),
        ],
    )
    async def test_a_claim_walks_the_index_before_any_analyze(
        self, pg_url: str, query: str, params: dict[str, Any]
    ) -> None:
        """On a table never analyzed, holding thousands of queued tasks, a claim reads the
        claim index in order (no sort of every queued row); so does the statement that
        picks and leases them at once."""
        async with opened(pg_url) as store:
            for _ in range(5):
                await store.enqueue([NewTask("echo", None)] * 1000, 1_000.0)
        q = {**_sql.queries("postgres"), "lease_any": _LEASE_ANY, "lease_queue": _LEASE_QUEUE}
        with psycopg.connect(pg_url) as conn:
            analyzed = conn.execute(
                "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
                " WHERE relname = 'trellis_tasks'"
            ).fetchone()
            assert analyzed == (None, None)
            conn.execute(q["claim_plan"])
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + q[query], params))
        index = "trellis_tasks_claim_any" if query.endswith("_any") else "trellis_tasks_claim"
        assert f"Index Scan using {index} on" in plan, plan
        assert "Sort" not in plan, plan

    async def test_a_one_queue_claim_does_not_walk_other_queues_backlog(self, pg_url: str) -> None:
        """Statistics taken while the table was empty, then a backlog in another queue (a
        burst before autovacuum's next ANALYZE): a claim of one queue still walks that
        queue's own index, not the all-queues one past every other queue's task."""
        async with opened(pg_url) as store:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("ANALYZE trellis_tasks")
            for _ in range(5):
                await store.enqueue([NewTask("echo", None, queue="backlog")] * 1000, 1_000.0)
        q = _sql.queries("postgres")
        params = {"queue": "default", "limit": 8, "exclude": []}
        with psycopg.connect(pg_url) as conn:
            conn.execute(q["claim_plan"])
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + q["claim_queue"], params))
        assert "Index Scan using trellis_tasks_claim on" in plan, plan

    async def test_a_claim_of_several_queues_takes_the_best_of_them_in_order(
        self, pg_url: str
    ) -> None:
        """Queue by queue, merged: the highest priority first, FIFO within one, of the
        named queues only, and no more than asked for."""
        async with opened(pg_url) as store:
            for queue, priority in (("a", 0), ("b", 5), ("c", 9), ("a", 5), ("b", 0)):
                await store.enqueue([NewTask("echo", queue, queue=queue, priority=priority)], 1.0)
            claimed = await store.claim(["a", "b"], 3, "node", 100.0, 2.0)
        assert [(t.queue, t.priority) for t in claimed] == [("b", 5), ("a", 5), ("a", 0)]


@contextmanager
def round_trips(store: PostgresStore, path: Path) -> Iterator[Callable[[], int]]:
    """Within the block, libpq traces the protocol of the store's one pool connection;
    after it, the callable counts the round trips (each turn from our messages to the
    server's answers)."""
    assert store._pool is not None
    with store._pool.connection() as conn:
        pgconn = conn.pgconn

    def count() -> int:
        sides = [line[0] for line in path.read_text().splitlines() if line[:1] in ("F", "B")]
        return sum(1 for sent, answer in itertools.pairwise(sides) if (sent, answer) == ("F", "B"))

    with path.open("w") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield count
        finally:
            pgconn.untrace()


def one_connection(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "pool_min=1&pool_max=1"


@pytest.mark.postgres
class TestRoundTrips:
    """The hot path's calls, counted in round trips to the server: on a busy machine
    each costs more than the statements themselves."""

    @pytest.mark.parametrize("queues", [["default"], None])
    async def test_a_claim_of_one_queue_or_all_is_one_round_trip(
        self, pg_url: str, tmp_path: Path, queues: list[str] | None
    ) -> None:
        """BEGIN, the statement that picks and leases, and COMMIT go together."""
        async with opened(one_connection(pg_url)) as store:
            await store.enqueue([NewTask("echo", n, priority=n % 3) for n in range(6)], NOW)
            with round_trips(store, tmp_path / "trace") as count:
                claimed = await store.claim(queues, 4, "node", NOW + 60, NOW)
            assert count() == 1
        assert [t.priority for t in claimed] == [2, 2, 1, 1]
        assert all(t.lease_owner == "node" and t.lease_expires_at == NOW + 60 for t in claimed)

    async def test_a_submission_is_two_round_trips(self, pg_url: str, tmp_path: Path) -> None:
        """BEGIN rides with the inserts; COMMIT goes alone only because nothing of the
        call was answered before it (a connection that died unnoticed is found out while
        the call can still run again)."""
        async with opened(one_connection(pg_url)) as store:
            with round_trips(store, tmp_path / "trace") as count:
                await store.enqueue([NewTask("echo", 1)], NOW)
            assert count() == 2

    @pytest.mark.parametrize("key", [None, "order-1"])
    async def test_a_submission_claimed_in_its_commit_is_two_round_trips(
        self, pg_url: str, tmp_path: Path, key: str | None
    ) -> None:
        """A task submitted to an idle node is claimed in the commit that stores it: the
        claim is sent with the COMMIT and read with its answer, no round trip of its own
        (an idempotency key's insert is answered first: it may find the task stored)."""
        task = NewTask("echo", 1, idempotency_key=key)
        claim = ClaimRequest(("default",), 4, "node", NOW + 60)
        async with opened(one_connection(pg_url)) as store:
            with round_trips(store, tmp_path / "trace") as count:
                done = await store.apply(Work([task], [], [claim]), NOW)
            assert count() == 2
        ((claimed,),) = done.claimed
        assert claimed.id == done.submitted[0].task.id and claimed.lease_owner == "node"

    async def test_outcomes_are_two_round_trips(self, pg_url: str, tmp_path: Path) -> None:
        """The leases read (with BEGIN), then the writes with COMMIT."""
        async with opened(one_connection(pg_url)) as store:
            await store.enqueue([NewTask("echo", 1)], NOW)
            (task,) = await store.claim(None, 1, "node", NOW + 60, NOW)
            outcome = Outcome(task.id, "node", 1, TaskStatus.COMPLETED, result=2, started_at=NOW)
            with round_trips(store, tmp_path / "trace") as count:
                moves = await store.finish([outcome], NOW + 1)
            assert count() == 2
        assert [m.task.status for m in moves] == [TaskStatus.RUNNING, TaskStatus.COMPLETED]

    async def test_a_read_is_one_round_trip(self, pg_url: str, tmp_path: Path) -> None:
        """A read needs no transaction of its own."""
        async with opened(one_connection(pg_url)) as store:
            (submitted,), _ = await store.enqueue([NewTask("echo", 1)], NOW)
            with round_trips(store, tmp_path / "trace") as count:
                found = await store.get(submitted.task.id)
            assert count() == 1
        assert found is not None and found.id == submitted.task.id


def _write_event(conn: psycopg.Connection[Any], task_id: str, detail: str) -> int:
    """An event written in ``conn``'s open transaction, as a node's batch writes one."""
    row = conn.execute(
        "INSERT INTO trellis_events (task_id, from_status, to_status, at, attempt, detail)"
        " VALUES (%s, 'queued', 'queued', 0, 0, %s) RETURNING id",
        (task_id, detail),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
class TestEventFeedOrder:
    async def test_an_event_committed_out_of_id_order_is_not_missed(self, pg_url: str) -> None:
        """Two writers: the later id commits first while the earlier is in flight. A
        reader on from what it read still gets the earlier one once it commits."""
        async with opened(pg_url) as store:
            task = await add_one(store)
            start = await caught_up(store, pg_url)
            with psycopg.connect(pg_url) as slow, psycopg.connect(pg_url) as fast:
                fast.execute("SELECT pg_current_xact_id()")  # the older transaction
                early = _write_event(slow, task.id, "slow")  # takes the lower id
                late = _write_event(fast, task.id, "fast")
                assert early < late
                fast.commit()
                read = await read_some(store, start)
                assert [r.id for r in read] == [late]  # its transaction is older: safe
                assert await store.last_event_id() == late
                slow.commit()
            again = await read_some(store, read[-1].id)
            assert [(r.id, r.event.detail) for r in again] == [(early, "slow")]
            assert await store.events_after(early, 10) == []
            assert await store.last_event_id() == early

    async def test_a_later_transaction_waits_for_an_earlier_in_flight(self, pg_url: str) -> None:
        """Events of a transaction newer than one still in flight are held back: the one
        in flight may yet commit an event that sorts before them."""
        async with opened(pg_url) as store:
            task = await add_one(store)
            start = await caught_up(store, pg_url)
            with psycopg.connect(pg_url) as slow, psycopg.connect(pg_url) as fast:
                slow.execute("SELECT pg_current_xact_id()")  # in flight, older
                fast_id = _write_event(fast, task.id, "fast")
                fast.commit()
                assert await store.events_after(start, 10) == []
                assert await store.last_event_id() == start
                slow_id = _write_event(slow, task.id, "slow")
                slow.commit()
            read = await read_some(store, start, 2)
            assert [(r.id, r.event.detail) for r in read] == [(slow_id, "slow"), (fast_id, "fast")]

    async def test_concurrent_writers_lose_nothing(self, pg_url: str) -> None:
        """Two stores enqueueing side by side while a reader follows: the reader gets
        every event once."""
        async with opened(pg_url) as one, opened(pg_url) as two, opened(pg_url) as reader:
            read: list[int] = []
            expected = 40 * 2 * 3 * 2  # batches, writers, tasks, events

            async def follow() -> None:
                after = await reader.last_event_id()
                while len(read) < expected:
                    page = await reader.events_after(after, 50)
                    read.extend(r.id for r in page)
                    if page:
                        after = page[-1].id
                    else:
                        await trio.sleep(0.01)  # a poll, as the feed's timer polls

            async def write(store: PostgresStore) -> None:
                for _ in range(40):
                    await store.enqueue([NewTask("echo", None)] * 3, NOW)

            with trio.fail_after(60):  # a guard against a hang only
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(follow)
                    nursery.start_soon(write, one)
                    nursery.start_soon(write, two)
            with psycopg.connect(pg_url) as conn:
                written = [row[0] for row in conn.execute("SELECT id FROM trellis_events")]
        assert len(read) == len(set(read)) == expected
        assert set(read) == set(written)


async def read_some(store: PostgresStore, after: int, count: int = 1) -> list[Any]:
    """The events after ``after`` once there are ``count``: a transaction of another
    database on the same server, in flight a moment, holds back what readers may take."""
    with trio.fail_after(30):  # a guard against a hang only
        # The database has no event to wait on: it is polled, as the feed polls it.
        while len(read := await store.events_after(after, 10)) < count:  # noqa: ASYNC110
            await trio.sleep(0.01)
    return read


async def caught_up(store: PostgresStore, url: str) -> int:
    """The last event id once a reader may take every event written so far (as in
    :func:`read_some`, another database's transaction may hold them back a moment)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(id) FROM trellis_events").fetchone()
    assert row is not None
    with trio.fail_after(30):  # a guard against a hang only
        while (last := await store.last_event_id()) != row[0]:  # noqa: ASYNC110
            await trio.sleep(0.01)
    return last


async def add_one(store: PostgresStore) -> Task:
    (submitted,), _ = await store.enqueue([NewTask("echo", None)], NOW)
    return submitted.task
