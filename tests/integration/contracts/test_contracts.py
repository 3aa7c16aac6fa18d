"""Task contracts through a whole runtime: payloads checked at submit on every executor,
handlers given parsed values, results checked and stored as JSON, typed waits, schedules
checked when they are made, and stored payloads that no longer fit refused at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from tests.integration.contracts import handlers as h

from trellis_actors import Task, TaskStatus, ValidationError, open_runtime

LIMIT = 60.0
GOOD = h.Email(to="ada@example.org", subject="hello there world")


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool processes import handlers by name from the parent's ``sys.path``."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[3]))


@pytest.mark.parametrize(
    "handle", [h.send_email, h.send_email_in_thread, h.send_email_in_process], ids=str
)
async def test_each_executor_gets_the_parsed_payload_and_gives_json(handle: object) -> None:
    with trio.fail_after(LIMIT):
        async with open_runtime(h.app, workers=2, processes=1) as rt:
            task = await rt.submit(handle, GOOD)  # type: ignore[call-overload]  # parametrized
            assert task.payload == {"to": "ada@example.org", "subject": GOOD.subject, "retries": 0}
            done = await rt.wait(task)
            by_id = await rt.wait(task.id)
    assert done.status is TaskStatus.COMPLETED, done.error
    assert done.result == h.Receipt(to="ada@example.org", words=3)  # parsed by the contract
    assert by_id.result == {"to": "ada@example.org", "words": 3}  # by id: the stored JSON


async def test_a_payload_may_be_given_as_json_or_as_an_instance() -> None:
    async with open_runtime(h.app, workers=1) as rt:
        as_json = await rt.submit("send_email", {"to": "a@b.c", "subject": "hi"})
        typed = await rt.submit(h.send_email, h.Email(to="a@b.c", subject="hi"))
        point = await rt.submit(h.norm, h.Point(3, 4))
        size = await rt.submit(h.area, {"width": 2, "height": 5})
        results = [(await rt.wait(t)).result for t in (as_json, typed, point, size)]
    assert as_json.payload == typed.payload == {"to": "a@b.c", "subject": "hi", "retries": 0}
    assert point.payload == {"x": 3.0, "y": 4.0}
    receipt = h.Receipt(to="a@b.c", words=1)
    assert results == [receipt, receipt, 5.0, 10]  # waiting on a task parses its result


@pytest.mark.parametrize(
    ("task", "payload", "field"),
    [
        ("send_email", {"subject": "no recipient"}, "payload.to"),
        ("send_email", {"to": "not an address", "subject": "x"}, "payload.to"),
        ("send_email", {"to": "a@b.c", "subject": "x", "retries": "many"}, "payload.retries"),
        ("send_email", None, "payload"),
        ("area", {"width": 2}, "payload.height"),
        ("norm", {"x": 1, "y": "far"}, "payload.y"),
        ("double", "two", "payload"),
    ],
)
async def test_a_bad_payload_is_refused_at_submit_naming_the_field(
    task: str, payload: object, field: str
) -> None:
    async with open_runtime(h.app, workers=1) as rt:
        with pytest.raises(ValidationError) as caught:
            await rt.submit(task, payload)
        with pytest.raises(ValidationError) as in_batch:
            await rt.submit_many(
                [{"type": "double", "payload": 1}, {"type": task, "payload": payload}]
            )
        page = await rt.list()
    assert caught.value.field == field
    assert field in str(caught.value)
    assert in_batch.value.field == f"[1].{field}"
    assert page.items == []  # nothing stored, not even the good half of the batch


async def test_a_result_that_breaks_its_contract_fails_without_retry() -> None:
    async with open_runtime(h.app, workers=1) as rt:
        done = await rt.wait((await rt.submit(h.liar, 1)).id)
    assert done.status is TaskStatus.DEAD
    assert done.attempt == 1  # the same handler would break it again
    assert done.error is not None and done.error.type == "ValidationError"
    assert "result" in done.error.message


async def test_handlers_without_annotations_take_any_json() -> None:
    async with open_runtime(h.app, workers=1) as rt:
        done = await rt.wait((await rt.submit("untyped", [1, {"a": None}])).id)
    assert done.result == [1, {"a": None}]


async def test_a_stored_payload_that_no_longer_fits_fails_at_run_time(tmp_path: Path) -> None:
    """A payload stored before its contract changed (or written by hand) is read back as
    hostile: the attempt fails with the field named, and it is not retried."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    async with open_runtime(h.app, store=url, workers=0) as rt:
        task = await rt.submit("double", 2)
    import sqlite3

    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE trellis_tasks SET payload = ? WHERE id = ?", ('"two"', task.id))
    async with open_runtime(h.app, store=url, workers=1) as rt:
        done = await rt.wait(task.id)
    assert done.status is TaskStatus.DEAD and done.attempt == 1
    assert done.error is not None and done.error.type == "ValidationError"
    assert "payload" in done.error.message


async def test_schedules_are_checked_when_they_are_made() -> None:
    async with open_runtime(h.app, workers=0) as rt:
        with pytest.raises(ValidationError) as created:
            await rt.add_schedule("bad", h.double, "two", every=60)
        good = await rt.add_schedule("good", h.send_email, GOOD, every=60)
        with pytest.raises(ValidationError) as updated:
            await rt.update_schedule(good.id, payload={"to": "a@b.c"})
        kept = await rt.get_schedule(good.id)
        names = [s.name for s in await rt.list_schedules()]
    assert created.value.field == "payload"
    assert updated.value.field == "payload.subject"
    assert kept.payload == {"to": "ada@example.org", "subject": GOOD.subject, "retries": 0}
    assert names == ["good"]


def test_a_declared_schedule_is_checked_at_declaration() -> None:
    from trellis_actors import App

    app = App()

    @app.task
    async def triple(ctx: object, n: int) -> int:
        return n * 3

    with pytest.raises(ValidationError) as caught:
        app.schedule("bad", triple, "x", every=60)
    app.schedule("good", triple, 3, every=60)
    assert caught.value.field == "payload"
    assert [s.name for s in app.schedules] == ["good"]


async def test_typed_wait_keeps_the_task_type() -> None:
    async with open_runtime(h.app, workers=1) as rt:
        task: Task[h.Receipt] = await rt.submit(h.send_email, GOOD)
        done = await rt.wait(task)
    assert isinstance(done.result, h.Receipt)
