"""``trellis_actors.postgres``: a task written in the caller's transaction exists if and
only if that transaction commits, is checked like every submission, and wakes the nodes
(NOTIFY) as it commits."""

from __future__ import annotations

from typing import Any

import psycopg
import pydantic
import pytest
import trio
from tests import asyncio_kit

from trellis_actors import App, TaskContext, TaskStatus, ValidationError, open_runtime, postgres
from trellis_actors.errors import ConfigurationError

pytestmark = pytest.mark.postgres

app = App()


class Receipt(pydantic.BaseModel):
    order_id: int


@app.task
async def send_receipt(ctx: TaskContext, payload: Receipt) -> int:
    return payload.order_id


@app.task(queue="mail")
async def on_mail(ctx: TaskContext, payload: Any) -> Any:
    return payload


#: A node that polls once a minute: only a NOTIFY starts a task within the tests' bounds.
SLOW_POLL = 60.0


def stored(url: str) -> list[tuple[Any, ...]]:
    """``(id, type, queue, status, payload, events)`` of every stored task, oldest first."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT t.id::text, type, queue, status, payload, count(e.id)"
            " FROM trellis_tasks t LEFT JOIN trellis_events e ON e.task_id = t.id"
            " GROUP BY t.id ORDER BY t.id"
        ).fetchall()


class TestSyncConnection:
    def test_rolled_back_transaction_leaves_no_task(self, pg_url: str) -> None:
        """The caller's rollback unmakes the task: enqueue neither commits nor rolls back."""
        with psycopg.connect(pg_url) as conn:
            postgres.enqueue(conn, send_receipt, Receipt(order_id=1))
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            conn.rollback()
        assert stored(pg_url) == []

    def test_committed_transaction_keeps_task_and_its_events(self, pg_url: str) -> None:
        """Committed: the task is queued, with its type's queue and the store's two events."""
        with psycopg.connect(pg_url) as conn, conn.transaction():
            conn.execute("CREATE TABLE orders (id int)")  # the caller's own work beside it
            task_id = postgres.enqueue(conn, on_mail, {"to": "a@example.com"}, priority=3)
        assert stored(pg_url) == [
            (task_id, "on_mail", "mail", "queued", {"to": "a@example.com"}, 2)
        ]

    def test_autocommit_connection_writes_its_own_transaction(self, pg_url: str) -> None:
        """On an autocommit connection the task is committed at once, whole."""
        with psycopg.connect(pg_url, autocommit=True) as conn:
            task_id = postgres.enqueue(conn, "echo", 1)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert [row[0] for row in stored(pg_url)] == [task_id]

    def test_one_task_is_written_as_a_store_writes_it(self, pg_url: str) -> None:
        """A lone task (written in one statement) has the row and events a store gives it:
        read back through a store, due at once or delayed."""
        from trellis_actors.stores.postgres import PostgresStore

        with psycopg.connect(pg_url, autocommit=True) as conn:
            due = postgres.enqueue(conn, on_mail, {"n": 1}, priority=2, timeout=5)
            later = postgres.enqueue(conn, "echo", None, delay=3600)

        async def read() -> list[Any]:
            store = PostgresStore(pg_url)
            await store.open()
            try:
                return [(await store.get(i), await store.events(i)) for i in (due, later)]
            finally:
                await store.close()

        (task, events), (delayed, delayed_events) = trio.run(read)
        assert (task.status, task.queue, task.priority, task.timeout) == (
            TaskStatus.QUEUED,
            "mail",
            2,
            5.0,
        )
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, TaskStatus.PENDING),
            (TaskStatus.PENDING, TaskStatus.QUEUED),
        ]
        assert task.queued_at == task.created_at == events[1].at
        assert delayed.status is TaskStatus.PENDING
        assert [(e.from_status, e.to_status) for e in delayed_events] == [
            (None, TaskStatus.PENDING)
        ]

    def test_name_gets_the_defaults_or_the_queue_given(self, pg_url: str) -> None:
        """A type name gets queue "default" unless queue= says otherwise."""
        with psycopg.connect(pg_url) as conn, conn.transaction():
            postgres.enqueue(conn, "on_mail", 1)
            postgres.enqueue(conn, "on_mail", 2, queue="mail")
        assert [row[2] for row in stored(pg_url)] == ["default", "mail"]

    def test_idempotency_key_repeat_returns_the_same_id(self, pg_url: str) -> None:
        """A repeat of a key, in the same transaction or a later one, returns the first id."""
        with psycopg.connect(pg_url) as conn:
            with conn.transaction():
                first = postgres.enqueue(conn, "echo", 1, idempotency_key="order-7")
                again = postgres.enqueue(conn, "echo", 2, idempotency_key="order-7")
            with conn.transaction():
                later = postgres.enqueue(conn, "echo", 3, idempotency_key="order-7")
        assert first == again == later
        assert [(row[0], row[4], row[5]) for row in stored(pg_url)] == [(first, 1, 2)]

    def test_contract_violation_names_the_field_and_sends_nothing(self, pg_url: str) -> None:
        """The handle's payload contract is checked before any statement: the caller's
        transaction is untouched and goes on."""
        with psycopg.connect(pg_url) as conn, conn.transaction():
            with pytest.raises(ValidationError, match=r"payload\.order_id") as caught:
                postgres.enqueue(conn, send_receipt, {"order_id": "seven"})  # type: ignore[misc]
            assert caught.value.field == "payload.order_id"
            conn.execute("SELECT 1")
        assert stored(pg_url) == []

    def test_unknown_option_names_it(self, pg_url: str) -> None:
        with psycopg.connect(pg_url) as conn:
            with pytest.raises(ValidationError, match="unknown field 'colour'") as caught:
                postgres.enqueue(conn, "echo", 1, colour="red")  # type: ignore[call-overload]
            assert caught.value.field == "colour"
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    def test_enqueue_many_is_all_or_nothing(self, pg_url: str) -> None:
        """A batch is checked whole (an error names the item) and written in order."""
        with psycopg.connect(pg_url) as conn:
            with pytest.raises(ValidationError, match=r"item 1") as caught:
                postgres.enqueue_many(conn, [{"type": "echo"}, {"type": "echo", "priority": "x"}])
            assert caught.value.field == "[1].priority"
            with conn.transaction():
                ids = postgres.enqueue_many(
                    conn, [{"type": send_receipt, "payload": {"order_id": 1}}, {"type": "echo"}]
                )
        assert [row[0] for row in stored(pg_url)] == ids

    @pytest.mark.parametrize("many", [False, True], ids=["one", "many"])
    def test_database_without_the_schema_is_a_configuration_error(
        self, pg_empty_url: str, many: bool
    ) -> None:
        """A database no node or ``trellis migrate`` has set up: a clear error that says
        what to do, not the driver's missing-table error."""
        with psycopg.connect(pg_empty_url) as conn:
            with pytest.raises(ConfigurationError, match="trellis migrate"):
                if many:
                    postgres.enqueue_many(conn, [{"type": "echo", "idempotency_key": "k"}])
                else:
                    postgres.enqueue(conn, "echo", 1)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            conn.rollback()


class TestAsyncConnection:
    def test_rollback_and_commit(self, pg_url: str) -> None:
        """``enqueue_async`` on a psycopg AsyncConnection: the same guarantee."""

        async def scenario() -> list[str]:
            async with await psycopg.AsyncConnection.connect(pg_url) as conn:
                await postgres.enqueue_async(conn, "echo", "rolled back")
                await conn.rollback()
                async with conn.transaction():
                    kept = await postgres.enqueue_async(conn, send_receipt, Receipt(order_id=2))
                    again = await postgres.enqueue_async(conn, "echo", 1, idempotency_key="k")
                    same = await postgres.enqueue_async(conn, "echo", 2, idempotency_key="k")
                    assert again == same
                return [kept, again, *await postgres.enqueue_many_async(conn, [{"type": "x"}])]

        ids = asyncio_kit.run(scenario)
        assert [row[0] for row in stored(pg_url)] == ids  # the last: committed as it closed

    def test_validation_before_anything_is_sent(self, pg_url: str) -> None:
        async def scenario() -> None:
            async with await psycopg.AsyncConnection.connect(pg_url) as conn:
                with pytest.raises(ValidationError, match=r"payload\.order_id"):
                    await postgres.enqueue_async(conn, send_receipt, {"order_id": []})  # type: ignore[misc]
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

        asyncio_kit.run(scenario)
        assert stored(pg_url) == []

    def test_database_without_the_schema_is_a_configuration_error(self, pg_empty_url: str) -> None:
        async def scenario() -> None:
            async with await psycopg.AsyncConnection.connect(pg_empty_url) as conn:
                with pytest.raises(ConfigurationError, match="trellis migrate"):
                    await postgres.enqueue_async(conn, "echo", 1)
                await conn.rollback()
                with pytest.raises(ConfigurationError, match="trellis migrate"):
                    await postgres.enqueue_many_async(conn, [{"type": "echo"}, {"type": "x"}])

        asyncio_kit.run(scenario)


def _committed(url: str, *, use_async: bool) -> str:
    """One task enqueued and committed by a plain producer connection."""
    if use_async:

        async def produce() -> str:
            async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
                return await postgres.enqueue_async(conn, send_receipt, Receipt(order_id=42))

        return asyncio_kit.run(produce)
    with psycopg.connect(url) as conn, conn.transaction():
        return postgres.enqueue(conn, send_receipt, Receipt(order_id=42))


class TestNodes:
    @pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
    async def test_notify_starts_the_task_long_before_the_next_poll(
        self, pg_url: str, use_async: bool
    ) -> None:
        """A node polling once a minute runs a task committed elsewhere at once: the
        NOTIFY sent with it woke the node (a bound far under the poll interval, not a
        timing)."""
        async with open_runtime(app, store=pg_url, poll_interval=SLOW_POLL) as rt:
            task_id = await trio.to_thread.run_sync(lambda: _committed(pg_url, use_async=use_async))
            with trio.fail_after(SLOW_POLL / 4):
                done = await rt.wait(task_id)
        assert done.status is TaskStatus.COMPLETED
        assert done.result == 42
