"""``rt.submit``, ``submit_many``, ``rt.list`` and ids on every store: input that breaks a
rule is refused before it reaches the store, the same way on memory, SQLite and PostgreSQL,
and nothing restarts."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
from tests.integration.rules.kit import restarts

from trellis_actors import App, Runtime, TaskNotFound, ValidationError, open_runtime
from trellis_actors.errors import ScheduleNotFound, TrellisError

BAD_SUBMISSIONS = [
    (("echo", {"s": "a\x00b"}), {}, "payload", "strings must not contain NUL"),
    (("echo", {"k\x00": 1}), {}, "payload", "object keys must not contain NUL"),
    (("echo", ["\ud800"]), {}, "payload", "no lone surrogates"),
    (("echo", 1), {"priority": 2**40}, "priority", "from -2147483647 to 2147483647"),
    (("echo", 1), {"priority": 2**31}, "priority", "from -2147483647 to 2147483647"),
    (("echo", 1), {"priority": 2**63}, "priority", "from -2147483647 to 2147483647"),
    (("echo", 1), {"priority": -(2**31)}, "priority", "from -2147483647 to 2147483647"),
    (("echo", 1), {"max_attempts": 2**40}, "max_attempts", "from 1 to 1000"),
    (("echo", 1), {"queue": "a\x00b"}, "queue", "queue: strings must not contain NUL"),
    (("echo", 1), {"queue": "\udfff"}, "queue", "no lone surrogates"),
    (("echo", 1), {"idempotency_key": "k\x00"}, "idempotency_key", "must not contain NUL"),
    (("echo", 1), {"idempotency_key": "k" * 256}, "idempotency_key", "at most 255"),
    (("echo", 1), {"delay": 1e12}, "delay", "at most 315360000 (ten years)"),
    (("echo", 1), {"run_at": 1e13}, "run_at", "between 0001-01-02T00:00:00Z and 9999-12-30"),
    (("echo", 1), {"run_at": "9999-12-31T23:59:59-14:00"}, "run_at", "between 0001-01-02"),
    (("echo", 1), {"run_at": "0001-01-01T00:00:00+14:00"}, "run_at", "between 0001-01-02"),
    (("echo", 1), {"timeout": 1e300}, "timeout", "at most 31536000 (a year)"),
    (("ec\x00ho", 1), {}, "type", "type: strings must not contain NUL"),
]


@pytest.fixture
async def rt(store_url: str) -> Any:
    async with open_runtime(App(), store=store_url, workers=1) as runtime:
        yield runtime


async def assert_nothing_stored(rt: Runtime) -> None:
    assert (await rt.list(limit=1000)).items == []


class TestSubmitRefused:
    @pytest.mark.parametrize(
        ("args", "fields", "field", "message"),
        BAD_SUBMISSIONS,
        ids=[f"{field}-{i}" for i, (_, _, field, _) in enumerate(BAD_SUBMISSIONS)],
    )
    async def test_refused_on_every_store(
        self, rt: Runtime, args: tuple[Any, Any], fields: dict[str, Any], field: str, message: str
    ) -> None:
        """A value some store cannot hold is a ValidationError naming the field, on every
        store; nothing is stored and the store actor does not restart."""
        with pytest.raises(ValidationError, match=re.escape(message)) as caught:
            await rt.submit(*args, **fields)
        assert caught.value.field == field
        await assert_nothing_stored(rt)
        assert restarts(rt) == {}
        assert (await rt.submit("echo", "after")).payload == "after"

    async def test_bad_input_does_not_fail_other_submissions(self, rt: Runtime) -> None:
        """Submissions that share a store batch with a refused one are stored: the refused
        one never reached the store."""
        stored: list[str] = []

        async def good(n: int) -> None:
            stored.append((await rt.submit("echo", n)).id)

        async def bad(payload: Any, priority: int) -> None:
            with pytest.raises(ValidationError):
                await rt.submit("echo", payload, priority=priority)

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(good, n)
                if n == 10:
                    nursery.start_soon(bad, {"s": "a\x00b"}, 0)
                    nursery.start_soon(bad, None, 2**40)
        assert len(stored) == 20
        assert restarts(rt) == {}

    async def test_the_largest_values_are_stored(self, rt: Runtime) -> None:
        """The bounds themselves are accepted and read back as given."""
        task = await rt.submit(
            "echo",
            {"n": [[[]]], "big": 10**3999, "text": "\u2028😀"},
            priority=2**31 - 1,
            max_attempts=1000,
            timeout=365 * 86400.0,
            idempotency_key="k" * 255,
            queue="q" * 128,
            run_at="9999-12-30T00:00:00Z",
        )
        again = await rt.get(task.id)
        assert (again.priority, again.max_attempts, again.queue) == (2**31 - 1, 1000, "q" * 128)
        assert again.payload == {"n": [[[]]], "big": 10**3999, "text": "\u2028😀"}
        assert again.to_dict()["run_at"] == "9999-12-30T00:00:00Z"


class TestBatches:
    async def test_one_bad_item_refuses_the_batch(self, rt: Runtime) -> None:
        """``submit_many`` with one bad item stores nothing and names the item and field."""
        items: list[dict[str, Any]] = [{"type": "echo", "payload": i} for i in range(5)]
        items[3]["priority"] = 2**40
        with pytest.raises(ValidationError, match=r"^item 3: priority must be") as caught:
            await rt.submit_many(items)
        assert caught.value.field == "[3].priority"
        items[3] = {"type": "echo", "payload": {"deep": "\x00"}}
        with pytest.raises(ValidationError, match="item 3: payload") as caught:
            await rt.submit_many(items)
        assert caught.value.field == "[3].payload"
        await assert_nothing_stored(rt)
        assert restarts(rt) == {}


class TestReading:
    @pytest.mark.parametrize(
        ("filters", "field"),
        [
            ({"type": "\x00"}, "type"),
            ({"queue": "a\x00b"}, "queue"),
            ({"type": "t" * 129}, "type"),
            ({"queue": "\ud800"}, "queue"),
            ({"cursor": "\x00"}, "cursor"),
            ({"cursor": "not-a-task-id"}, "cursor"),
            ({"cursor": "01A22E7F-76E0-7000-B830-706349926201"}, "cursor"),
        ],
    )
    async def test_bad_filters(self, rt: Runtime, filters: dict[str, Any], field: str) -> None:
        """A filter or cursor no store could match is refused the same way on every store."""
        await rt.submit("echo", 1)
        with pytest.raises(ValidationError) as caught:
            await rt.list(**filters)
        assert caught.value.field == field
        assert restarts(rt) == {}

    @pytest.mark.parametrize("task_id", ["a\x00", "\x00" * 40, "x" * 129, "\ud800"])
    async def test_impossible_task_ids(self, rt: Runtime, task_id: str) -> None:
        """An id that cannot name a task is not found, whatever the call."""
        for call in (rt.get, rt.events, rt.cancel, rt.requeue, rt.wait):
            with pytest.raises(TaskNotFound, match="no task with id"):
                await call(task_id)
        assert await rt.purge([task_id]) == 0
        assert restarts(rt) == {}

    @pytest.mark.parametrize("schedule_id", ["a\x00", "x" * 129])
    async def test_impossible_schedule_ids(self, rt: Runtime, schedule_id: str) -> None:
        """An id that cannot name a schedule is not found, whatever the call."""
        for call in (
            rt.get_schedule,
            rt.pause_schedule,
            rt.resume_schedule,
            rt.delete_schedule,
            rt.run_schedule,
        ):
            with pytest.raises(ScheduleNotFound, match="no schedule with id"):
                await call(schedule_id)
        assert restarts(rt) == {}


class TestSchedules:
    @pytest.mark.parametrize(
        ("spec", "field", "message"),
        [
            ({"at": "0001-01-01T00:00:00+14:00"}, "at", "between 0001-01-02T00:00:00Z and"),
            ({"at": "9999-12-31T23:59:59-14:00"}, "at", "and 9999-12-30T00:00:00Z"),
            ({"at": 1e300}, "at", "between"),
            ({"every": 30, "queue": "a\x00"}, "queue", "must not contain NUL"),
            ({"every": 30, "priority": 2**31}, "priority", "from -2147483647"),
            ({"every": 30, "payload": {"a": "\x00"}}, "payload", "must not contain NUL"),
            ({"cron": "0 * * * *", "timezone": "Europe/\x00"}, "timezone", "unknown timezone"),
        ],
    )
    async def test_refused(
        self, rt: Runtime, spec: dict[str, Any], field: str, message: str
    ) -> None:
        """Schedule specs meet the same rules; nothing is stored, the scheduler lives on."""
        spec = dict(spec)  # shared by the store parameters
        payload = spec.pop("payload", None)
        with pytest.raises(ValidationError, match=re.escape(message)) as caught:
            await rt.add_schedule("s", "echo", payload, **spec)
        assert caught.value.field == field
        assert await rt.list_schedules() == []
        assert restarts(rt) == {}

    async def test_changes_meet_the_rules(self, rt: Runtime) -> None:
        """Changing a schedule to a time out of range is refused; it stays as it was."""
        schedule = await rt.add_schedule("s", "echo", every=60)
        for changes in ({"at": "0001-01-01T00:00:00+14:00"}, {"priority": 2**40}):
            with pytest.raises(TrellisError):
                await rt.update_schedule(schedule.id, **changes)
        assert await rt.list_schedules() == [schedule]
        assert restarts(rt) == {}
