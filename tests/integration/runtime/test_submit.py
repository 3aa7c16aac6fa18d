"""Submitting, reading and listing tasks; validation at the edge; the built-in types."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import trio
import trio.testing
from tests.integration.runtime.kit import all_tasks, assert_chained, path, submit_until

from trellis_actors import (
    App,
    Runtime,
    TaskContext,
    TaskNotFound,
    TaskStatus,
    UnknownTaskType,
    ValidationError,
    WaitTimeout,
    open_runtime,
)

S = TaskStatus


async def assert_nothing_stored(rt: Runtime) -> None:
    assert (await rt.list()).items == []
    assert (await rt.counts()).by_queue == {}


class TestSubmitAndRead:
    async def test_submit_returns_the_stored_task(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """submit() resolves the type's defaults and get() reads the same task back."""
        async with open_runtime(App(), workers=0) as rt:
            task = await rt.submit("echo", {"a": [1, 2]}, priority=3, max_attempts=5)
            assert (task.type, task.queue, task.payload) == ("echo", "default", {"a": [1, 2]})
            assert (task.priority, task.max_attempts, task.attempt) == (3, 5, 0)
            assert task.status is S.QUEUED
            assert task.created_at == task.queued_at == task.run_at
            stored = await rt.get(task.id)
            assert stored.id == task.id and stored.status is S.QUEUED

    async def test_ids_sort_in_submission_order(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Task ids are time-ordered: later submissions sort after earlier ones."""
        async with open_runtime(App(), workers=0) as rt:
            ids = [(await rt.submit("echo", i)).id for i in range(50)]
            assert ids == sorted(ids) and len(set(ids)) == 50

    async def test_get_and_events_of_unknown_task(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """get() and events() raise TaskNotFound for an id nobody stored."""
        async with open_runtime(App(), workers=0) as rt:
            with pytest.raises(TaskNotFound, match="no task with id 'nope'"):
                await rt.get("nope")
            with pytest.raises(TaskNotFound, match="no task with id 'nope'"):
                await rt.events("nope")
            with pytest.raises(TaskNotFound):
                await rt.cancel("nope")

    async def test_events_of_a_completed_task(self, autojump_clock: trio.testing.MockClock) -> None:
        """A finished task's history reads pending, queued, running, completed."""
        async with open_runtime(App(), workers=1) as rt:
            task = await rt.submit("echo", "hi")
            done = await rt.wait(task.id)
            events = await rt.events(task.id)
        assert done.status is S.COMPLETED and done.result == "hi"
        assert path(events) == ["pending", "queued", "running", "completed"]
        assert [e.attempt for e in events] == [0, 0, 1, 1]
        assert_chained(events)
        assert events[-1].at == done.finished_at
        assert done.started_at is not None and done.finished_at >= done.started_at
        assert (done.lease_owner, done.lease_expires_at) == (None, None)

    async def test_idempotency_key_returns_the_same_task(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A repeated idempotency key gives back the first task and stores nothing new."""
        async with open_runtime(App(), workers=1) as rt:
            first = await rt.submit("echo", 1, idempotency_key="order-42")
            await rt.wait(first.id)
            again = await rt.submit("echo", 2, idempotency_key="order-42")
            other = await rt.submit("echo", 3, idempotency_key="order-43")
            assert again.id == first.id and again.payload == 1
            assert other.id != first.id
            assert [t.id for t in await all_tasks(rt)] == [other.id, first.id]
            (batch,) = await rt.submit_many(
                [{"type": "echo", "payload": 9, "idempotency_key": "order-42"}]
            )
            assert batch.id == first.id


class TestList:
    async def test_filters(self, autojump_clock: trio.testing.MockClock) -> None:
        """list() filters by status, type and queue, newest first."""
        async with open_runtime(App(), workers=0) as rt:
            a = await rt.submit("echo", 1)
            b = await rt.submit("sleep", {"seconds": 1}, queue="slow")
            c = await rt.submit("echo", 2, delay=60)
            d = await rt.submit("echo", 3, queue="slow")
            assert [t.id for t in (await rt.list()).items] == [d.id, c.id, b.id, a.id]
            assert [t.id for t in (await rt.list(type="echo")).items] == [d.id, c.id, a.id]
            assert [t.id for t in (await rt.list(queue="slow")).items] == [d.id, b.id]
            assert [t.id for t in (await rt.list(status="pending")).items] == [c.id]
            queued = await rt.list(status=S.QUEUED, type="echo", queue="slow")
            assert [t.id for t in queued.items] == [d.id]
            assert (await rt.list(type="nope")).items == []
            counts = await rt.counts()
            assert counts.by_queue == {
                "default": {"queued": 1, "pending": 1},
                "slow": {"queued": 2},
            }

    async def test_cursor_pagination(self, autojump_clock: trio.testing.MockClock) -> None:
        """Pages follow one another through the cursor without gaps or repeats."""
        async with open_runtime(App(), workers=0) as rt:
            ids = []
            for i in range(23):
                ids.append((await rt.submit("echo", i, queue="odd" if i % 2 else "even")).id)
            seen: list[str] = []
            cursor = None
            pages = 0
            while True:
                page = await rt.list(limit=5, cursor=cursor)
                assert len(page.items) <= 5
                seen.extend(t.id for t in page.items)
                pages += 1
                if page.next_cursor is None:
                    break
                assert page.next_cursor == page.items[-1].id
                cursor = page.next_cursor
            assert (seen, pages) == (ids[::-1], 5)
            odd = [t.id for t in await all_tasks(rt, queue="odd")]
            assert odd == ids[1::2][::-1]

    async def test_last_full_page_has_no_cursor(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A page that ends exactly at the last task says there is no next page."""
        async with open_runtime(App(), workers=0) as rt:
            for i in range(4):
                await rt.submit("echo", i)
            first = await rt.list(limit=2)
            second = await rt.list(limit=2, cursor=first.next_cursor)
            assert len(second.items) == 2 and second.next_cursor is None

    @pytest.mark.parametrize(
        ("filters", "field", "message"),
        [
            ({"limit": 0}, "limit", "limit must be an integer from 1 to 1000"),
            ({"limit": 1001}, "limit", "limit must be an integer from 1 to 1000"),
            ({"status": "done"}, "status", "unknown status 'done'; known: pending, queued"),
        ],
    )
    async def test_bad_filters(
        self,
        autojump_clock: trio.testing.MockClock,
        filters: dict[str, Any],
        field: str,
        message: str,
    ) -> None:
        """Bad list arguments raise ValidationError naming the field."""
        async with open_runtime(App(), workers=0) as rt:
            with pytest.raises(ValidationError, match=re.escape(message)) as caught:
                await rt.list(**filters)
            assert caught.value.field == field


class Unserialisable:
    pass


class TestValidation:
    @pytest.mark.parametrize(
        ("args", "fields", "field", "message"),
        [
            (("echo", 1), {"delay": -1}, "delay", "delay must be >= 0 seconds"),
            (("echo", 1), {"delay": "soon"}, "delay", "delay must be a finite number"),
            (("echo", 1), {"delay": math.inf}, "delay", "delay must be a finite number"),
            (("echo", 1), {"priority": "high"}, "priority", "priority must be an integer"),
            (("echo", 1), {"priority": True}, "priority", "priority must be an integer"),
            (("echo", 1), {"priority": 1.5}, "priority", "priority must be an integer"),
            (("echo", Unserialisable()), {}, "payload", "payload must be JSON-serialisable"),
            (("echo", {1, 2}), {}, "payload", "payload must be JSON-serialisable"),
            (("echo", math.nan), {}, "payload", "payload must be JSON-serialisable"),
            (("echo", 1), {"delay": 5, "run_at": 1e10}, "delay", "give delay or run_at, not both"),
            (("echo", 1), {"colour": "red"}, "colour", "unknown field 'colour'"),
            (
                ("echo", 1),
                {"max_attempts": 0},
                "max_attempts",
                "max_attempts must be an integer from 1 to 1000",
            ),
            (("echo", 1), {"timeout": 0}, "timeout", "timeout must be > 0 seconds"),
            (("echo", 1), {"run_at": "soonish"}, "run_at", "run_at must be an ISO 8601"),
            (("echo", 1), {"queue": 5}, "queue", "queue must be a non-empty string"),
            (("echo", 1), {"queue": "q" * 129}, "queue", "queue must be a non-empty string"),
            (("echo", 1), {"idempotency_key": ""}, "idempotency_key", "idempotency_key must"),
            ((42, 1), {}, "type", "type must be a non-empty string"),
        ],
    )
    async def test_bad_submission(
        self,
        autojump_clock: trio.testing.MockClock,
        args: tuple[Any, Any],
        fields: dict[str, Any],
        field: str,
        message: str,
    ) -> None:
        """Each bad input raises ValidationError naming the field, and nothing is stored."""
        async with open_runtime(App(), workers=1) as rt:
            with pytest.raises(ValidationError, match=re.escape(message)) as caught:
                await rt.submit(*args, **fields)
            assert caught.value.field == field
            await assert_nothing_stored(rt)

    async def test_unknown_type(self, autojump_clock: trio.testing.MockClock) -> None:
        """An unregistered type raises UnknownTaskType listing the known ones."""
        async with open_runtime(App(), workers=1) as rt:
            with pytest.raises(
                UnknownTaskType,
                match=re.escape("unknown task type 'nope'; known types: echo, sleep"),
            ):
                await rt.submit("nope", {})
            await assert_nothing_stored(rt)

    async def test_one_bad_item_stores_none_of_a_batch(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """submit_many() validates every item first; the field names the item."""
        async with open_runtime(App(), workers=1) as rt:
            items = [
                {"type": "echo", "payload": 1},
                {"type": "echo", "payload": 2, "priority": "high"},
            ]
            with pytest.raises(ValidationError, match="item 1: priority must be") as caught:
                await rt.submit_many(items)
            assert caught.value.field == "[1].priority"
            with pytest.raises(ValidationError, match="item 0 has no type") as caught:
                await rt.submit_many([{"payload": 1}])
            assert caught.value.field == "[0].type"
            await assert_nothing_stored(rt)
            stored = await rt.submit_many(items[:1] * 3)
            assert len({t.id for t in stored}) == 3


class TestWait:
    async def test_wait_timeout(self, autojump_clock: trio.testing.MockClock) -> None:
        """wait(id, timeout=...) raises WaitTimeout once the (virtual) time is up."""
        async with open_runtime(App(), workers=1) as rt:
            task = await rt.submit("sleep", {"seconds": 100})
            start = trio.current_time()
            with pytest.raises(WaitTimeout, match=f"task {task.id} did not finish within 7.5s"):
                await rt.wait(task.id, timeout=7.5)
            assert trio.current_time() - start == pytest.approx(7.5)
            assert (await rt.get(task.id)).status is S.RUNNING
            await rt.cancel(task.id)

    async def test_wait_returns_a_task_that_already_ended(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Waiting on a finished task returns at once."""
        async with open_runtime(App(), workers=1) as rt:
            task = await rt.submit("echo", 1)
            await rt.wait(task.id)
            start = trio.current_time()
            assert (await rt.wait(task.id, timeout=1)).status is S.COMPLETED
            assert trio.current_time() == start


class TestBuiltins:
    async def test_echo(self, autojump_clock: trio.testing.MockClock) -> None:
        """echo returns its payload as the result."""
        payload = {"nested": [1, "two", {"three": None}], "ok": True}
        async with open_runtime(App(), workers=1) as rt:
            done = await rt.wait((await rt.submit("echo", payload)).id)
        assert (done.status, done.result, done.attempt) == (S.COMPLETED, payload, 1)

    async def test_sleep_reports_progress(self, autojump_clock: trio.testing.MockClock) -> None:
        """sleep moves its progress on every tenth of its time, visible while it runs."""
        async with open_runtime(App(), workers=1) as rt:
            task = await submit_until(rt, S.RUNNING, "sleep", {"seconds": 10})
            started = trio.current_time()
            assert (await rt.get(task.id)).progress is None
            await trio.sleep_until(started + 5.5)
            midway = await rt.get(task.id)
            assert midway.status is S.RUNNING
            assert midway.progress == pytest.approx(0.5)
            assert midway.progress_message == "slept 5s of 10s"
            done = await rt.wait(task.id)
            assert trio.current_time() - started == pytest.approx(10)
        assert done.result == {"slept": 10.0}
        assert (done.progress, done.progress_message) == (1.0, "slept 10s of 10s")

    async def test_sleep_with_a_bad_payload_is_refused_at_submit(self) -> None:
        """The payload's contract is checked when it is submitted, not when it runs."""
        async with open_runtime(App(), workers=1) as rt:
            with pytest.raises(ValidationError) as caught:
                await rt.submit("sleep", {"seconds": -1})
            page = await rt.list()
        assert caught.value.field == "payload.seconds"
        assert page.items == []

    async def test_a_validation_error_from_a_handler_fails_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A ValidationError from a handler is not retried: the same payload would fail."""
        app = App()

        @app.task
        async def picky(ctx: object, payload: object) -> None:
            raise ValidationError("picky needs something else", field="payload")

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("picky", 1)).id)
            events = await rt.events(done.id)
        assert done.status is S.DEAD and done.attempt == 1
        assert done.error is not None and done.error.type == "ValidationError"
        assert "picky needs something else" in done.error.message
        assert path(events)[-3:] == ["running", "failed", "dead"]


class TestResults:
    @pytest.mark.parametrize(
        "result",
        [{1, 2}, Unserialisable(), math.nan, "deep"],
        ids=["set", "object", "nan", "deep"],
    )
    async def test_unserialisable_result(
        self, autojump_clock: trio.testing.MockClock, result: Any
    ) -> None:
        """A result that is not JSON fails the task (ResultNotSerializable); work goes on."""
        app = App()
        runs = []

        @app.task(name="weird", dead_letter=False)
        async def weird(ctx: TaskContext, payload: Any) -> Any:
            runs.append(ctx.attempt)
            if result == "deep":
                nested: list[Any] = []
                for _ in range(100_000):
                    nested = [nested]
                return nested
            return result

        async with open_runtime(app, workers=1) as rt:
            done = await rt.wait((await rt.submit("weird")).id)
            after = await rt.wait((await rt.submit("echo", "still here")).id)
            worker = rt.snapshot().find("worker-1")
        assert (done.status, done.attempt, runs) == (S.FAILED, 1, [1])
        assert done.error is not None and done.error.type == "ResultNotSerializable"
        assert done.result is None
        assert after.result == "still here"
        assert worker is not None and worker.restarts == 0
