"""Reading and moving tasks: list, get, history, cancel, requeue."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from tests.unit.http.kit import Probe

from trellis_actors import Runtime
from trellis_actors.http._state import state_of
from trellis_actors.http.schemas import EventList, TaskOut, TaskPage


class TestList:
    async def test_newest_first_with_cursor(self, client: Any, runtime: Runtime) -> None:
        """Pages come newest first; next_cursor fetches the rest."""
        ids = [(await runtime.submit("echo", i, delay=60)).id for i in range(5)]
        first = await (await client.get("/tasks?limit=3")).get_json()
        TaskPage.model_validate(first)
        assert [t["id"] for t in first["items"]] == ids[::-1][:3]
        cursor = first["next_cursor"]
        second = await (await client.get(f"/tasks?limit=3&cursor={cursor}")).get_json()
        assert [t["id"] for t in second["items"]] == ids[::-1][3:]
        assert second["next_cursor"] is None

    async def test_filters(self, client: Any, runtime: Runtime) -> None:
        """status, type and queue narrow the listing."""
        mail = await runtime.submit("echo", queue="mail", delay=60)
        await runtime.submit("echo", delay=60)
        await runtime.submit("fail", delay=60)
        by_queue = await (await client.get("/tasks?queue=mail")).get_json()
        assert [t["id"] for t in by_queue["items"]] == [mail.id]
        by_type = await (await client.get("/tasks?type=fail&status=pending")).get_json()
        assert [t["type"] for t in by_type["items"]] == ["fail"]
        none = await (await client.get("/tasks?status=running")).get_json()
        assert none["items"] == []

    async def test_bad_parameters(self, client: Any) -> None:
        """A bad status, limit or cursor answers 400 naming the parameter."""
        for query, field in (
            ("status=sleepy", "status"),
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("limit=1001", "limit"),
        ):
            response = await client.get(f"/tasks?{query}")
            assert response.status_code == 400, query
            assert (await response.get_json())["error"]["field"] == field


class TestGet:
    async def test_found(self, client: Any, runtime: Runtime) -> None:
        """A task comes back with status, attempt, timestamps and result."""
        task = await runtime.submit("echo", {"a": 1})
        await runtime.wait(task.id, timeout=5)
        body = await (await client.get(f"/tasks/{task.id}")).get_json()
        TaskOut.model_validate(body)
        assert (body["status"], body["attempt"], body["result"]) == ("completed", 1, {"a": 1})
        assert body["started_at"] and body["finished_at"]

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        response = await client.get("/tasks/no-such-task")
        assert response.status_code == 404
        assert (await response.get_json())["error"]["code"] == "not_found"


class TestEvents:
    async def test_history(self, client: Any, runtime: Runtime) -> None:
        """The history lists every transition, oldest first."""
        task = await runtime.submit("echo")
        await runtime.wait(task.id, timeout=5)
        body = await (await client.get(f"/tasks/{task.id}/events")).get_json()
        EventList.model_validate(body)
        moves = [(e["from"], e["to"]) for e in body["items"]]
        assert moves == [
            (None, "pending"),
            ("pending", "queued"),
            ("queued", "running"),
            ("running", "completed"),
        ]

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        assert (await client.get("/tasks/nope/events")).status_code == 404


class TestWait:
    async def test_answers_when_the_task_ends(self, client: Any, runtime: Runtime) -> None:
        """The long poll answers with the task once it has ended."""
        task = await runtime.submit("echo", {"a": 1})
        response = await client.get(f"/tasks/{task.id}/wait?timeout=10")
        assert response.status_code == 200
        body = await response.get_json()
        TaskOut.model_validate(body)
        assert (body["status"], body["result"]) == ("completed", {"a": 1})

    async def test_answers_when_the_time_is_up(self, client: Any, runtime: Runtime) -> None:
        """A task that has not ended comes back as it is once the timeout has passed."""
        task = await runtime.submit("echo", delay=60)
        response = await client.get(f"/tasks/{task.id}/wait?timeout=0.05")
        assert response.status_code == 200
        assert (await response.get_json())["status"] == "pending"

    async def test_answers_when_the_server_stops(self, client: Any, runtime: Runtime) -> None:
        """A stopping server answers a held wait at once, and a new one without waiting."""
        task = await runtime.submit("echo", delay=60)
        state = state_of(client.app.extensions)
        answers = []

        async def wait() -> None:
            answers.append(await client.get(f"/tasks/{task.id}/wait?timeout=30"))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()  # the request is held
                assert state.waiting
                state.close()
            answers.append(await client.get(f"/tasks/{task.id}/wait?timeout=30"))
        for answer in answers:
            assert answer.status_code == 200
            assert (await answer.get_json())["status"] == "pending"

    async def test_bad_timeout(self, client: Any) -> None:
        """A negative or non-numeric timeout answers 400 naming it."""
        for value in ("-1", "soon", "nan"):
            response = await client.get(f"/tasks/nope/wait?timeout={value}")
            assert response.status_code == 400, value
            assert (await response.get_json())["error"]["field"] == "timeout"

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        assert (await client.get("/tasks/nope/wait?timeout=1")).status_code == 404


class TestCancel:
    async def test_pending(self, client: Any, runtime: Runtime) -> None:
        """A waiting task is cancelled."""
        task = await runtime.submit("echo", delay=60)
        response = await client.delete(f"/tasks/{task.id}")
        assert response.status_code == 200
        assert (await response.get_json())["status"] == "cancelled"

    async def test_running(self, client: Any, runtime: Runtime, probe: Probe) -> None:
        """Cancelling a running task cancels its handler."""
        task = await runtime.submit("block")
        with trio.fail_after(5):
            await probe.started.wait()
        response = await client.delete(f"/tasks/{task.id}")
        assert (await response.get_json())["status"] == "cancelled"
        with trio.fail_after(5):
            await probe.stopped.wait()

    async def test_finished(self, client: Any, runtime: Runtime) -> None:
        """A finished task cannot be cancelled: 409."""
        task = await runtime.submit("echo")
        await runtime.wait(task.id, timeout=5)
        response = await client.delete(f"/tasks/{task.id}")
        assert response.status_code == 409
        assert (await response.get_json())["error"]["code"] == "invalid_transition"

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        assert (await client.delete("/tasks/nope")).status_code == 404


class TestRequeue:
    async def test_dead(self, client: Any, runtime: Runtime) -> None:
        """A dead task goes back to the queue."""
        task = await runtime.submit("fail")
        assert (await runtime.wait(task.id, timeout=5)).status == "dead"
        response = await client.post(f"/tasks/{task.id}/requeue")
        assert response.status_code == 200
        assert (await response.get_json())["status"] == "queued"

    async def test_not_dead(self, client: Any, runtime: Runtime) -> None:
        """Only a dead task can be requeued: 409 otherwise."""
        task = await runtime.submit("echo", delay=60)
        response = await client.post(f"/tasks/{task.id}/requeue")
        assert response.status_code == 409

    async def test_unknown(self, client: Any) -> None:
        """An unknown id answers 404."""
        assert (await client.post("/tasks/nope/requeue")).status_code == 404
