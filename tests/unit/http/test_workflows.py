"""``/workflows``: reading a workflow, sending it signals; its moves on ``/events``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from tests.unit.http.kit import TOKEN
from tests.unit.http.test_events import open_stream

from trellis_actors import App, Runtime, TaskContext, WorkflowContext, open_runtime
from trellis_actors.access.tokens import Grant, Scope, Token, Tokens, digest
from trellis_actors.http import Auth, create_app
from trellis_actors.http.schemas import SignalOut, TaskOut, TransitionOut, WorkflowOut


def workflow_app() -> App:
    app = App()

    @app.task
    async def double(ctx: TaskContext, n: int) -> int:
        return 2 * n

    @app.workflow
    async def approve(wf: WorkflowContext, n: int) -> dict[str, Any]:
        doubled = await wf.run(double, n)
        await wf.sleep(60)
        answer = await wf.wait_signal("approved")
        return {"doubled": doubled, "answer": answer}

    @app.workflow(queue="other")
    async def elsewhere(wf: WorkflowContext, n: int) -> None:
        await wf.wait_signal("go")

    return app


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with open_runtime(workflow_app(), store="memory://", workers=2) as rt:
        yield rt


async def waiting_for_signal(runtime: Runtime, workflow_id: str) -> None:
    """Until the workflow waits with a signal wait last in its history."""
    async with runtime.subscribe() as moves:
        while True:
            state = await runtime.workflow(workflow_id)
            last = state.history[-1] if state.history else None
            if state.task.status == "waiting" and last is not None and last.kind == "signal":
                return
            async for move in moves:
                if move.task.id == workflow_id:
                    break


class TestRead:
    async def test_history_steps_and_signals(
        self, client: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """GET /workflows/{id}: the task, the history in order, the steps' tasks."""
        flow = await runtime.submit("approve", 21)
        await waiting_for_signal(runtime, flow.id)
        body = await (await client.get(f"/workflows/{flow.id}")).get_json()
        WorkflowOut.model_validate(body)
        assert body["task"]["status"] == "waiting"
        kinds = [(e["seq"], e["kind"], e["outcome"]) for e in body["history"]]
        assert kinds == [(1, "step", "completed"), (2, "sleep", "elapsed"), (3, "signal", None)]
        step = body["steps"][0]
        assert (step["type"], step["parent_id"], step["result"]) == ("double", flow.id, 42)
        assert body["history"][0]["step_id"] == step["id"]
        assert body["history"][1]["wake_at"] is not None
        TaskOut.model_validate(step)
        listed = await (await client.get("/tasks?type=double")).get_json()
        assert [t["parent_id"] for t in listed["items"]] == [flow.id]

    async def test_unknown_and_not_a_workflow(self, client: Any, runtime: Runtime) -> None:
        """404 for an unknown id; 409 for a task that is not a workflow."""
        response = await client.get("/workflows/0190b6c8-0000-7000-8000-000000000000")
        assert response.status_code == 404
        task = await runtime.submit("double", 1, delay=60)
        response = await client.get(f"/workflows/{task.id}")
        assert response.status_code == 409
        error = (await response.get_json())["error"]
        assert error["code"] == "not_a_workflow"
        assert "not a workflow" in error["message"]


class TestSignal:
    async def test_received_and_answered_202(
        self, client: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The body is the payload; the workflow receives it and completes."""
        flow = await runtime.submit("approve", 2)
        response = await client.post(f"/workflows/{flow.id}/signals/approved", json={"by": "ops"})
        assert response.status_code == 202
        body = await response.get_json()
        SignalOut.model_validate(body)
        assert (body["workflow_id"], body["name"], body["payload"]) == (
            flow.id,
            "approved",
            {"by": "ops"},
        )
        done = await runtime.wait(flow.id)
        assert done.result == {"doubled": 4, "answer": {"by": "ops"}}

    async def test_empty_body_sends_null(
        self, client: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        flow = await runtime.submit("approve", 1)
        response = await client.post(f"/workflows/{flow.id}/signals/approved")
        assert response.status_code == 202
        assert (await response.get_json())["payload"] is None
        done = await runtime.wait(flow.id)
        assert done.result == {"doubled": 2, "answer": None}

    async def test_refusals(
        self, client: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """404 unknown id, 409 not a workflow or ended, 400 naming the field."""
        unknown = "0190b6c8-0000-7000-8000-000000000000"
        response = await client.post(f"/workflows/{unknown}/signals/go", json=1)
        assert response.status_code == 404
        task = await runtime.submit("double", 1)
        response = await client.post(f"/workflows/{task.id}/signals/go", json=1)
        assert response.status_code == 409
        assert (await response.get_json())["error"]["code"] == "not_a_workflow"

        flow = await runtime.submit("approve", 1)
        long_name = "n" * 300
        for path, data, field in (
            (f"/workflows/{flow.id}/signals/{long_name}", b"1", "name"),
            (f"/workflows/{flow.id}/signals/a%00b", b"1", "name"),
            (f"/workflows/{flow.id}/signals/go", b'{"a": "\\u0000"}', "payload"),
        ):
            response = await client.post(
                path, data=data, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, path
            assert (await response.get_json())["error"]["field"] == field, path
        response = await client.post(
            f"/workflows/{flow.id}/signals/go",
            data=b"{nope",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert (await response.get_json())["error"]["code"] == "malformed_json"

        await client.post(f"/workflows/{flow.id}/signals/approved", json=True)
        assert (await runtime.wait(flow.id)).status == "completed"
        response = await client.post(f"/workflows/{flow.id}/signals/approved", json=True)
        assert response.status_code == 409
        error = (await response.get_json())["error"]
        assert error["code"] == "workflow_ended"
        assert "can no longer receive signals" in error["message"]

    async def test_scopes(self, runtime: Runtime, autojump_clock: trio.testing.MockClock) -> None:
        """A read token may read but not signal; a submit token limited to some types or
        queues may signal only workflows of those."""
        tokens = Tokens(
            (
                Token(digest("reader"), Grant("reader", frozenset({Scope.READ}))),
                Token(
                    digest("limited"),
                    Grant("limited", frozenset({Scope.SUBMIT}), types=frozenset({"approve"})),
                ),
                Token.admin(TOKEN),
            )
        )
        app = create_app(runtime, auth=Auth(tokens=tokens))
        flow = await runtime.submit("approve", 1)
        other = await runtime.submit("elsewhere", 1)
        async with app.test_app() as test_app:
            client = test_app.test_client()

            def bearer(secret: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {secret}"}

            read = await client.get(f"/workflows/{flow.id}", headers=bearer("reader"))
            assert read.status_code == 200
            path = f"/workflows/{flow.id}/signals/approved"
            response = await client.post(path, json=1, headers=bearer("reader"))
            assert response.status_code == 403
            assert (await response.get_json())["error"]["scope"] == "submit"
            response = await client.post(
                f"/workflows/{other.id}/signals/go", json=1, headers=bearer("limited")
            )
            assert response.status_code == 403
            response = await client.post(path, json=1, headers=bearer("limited"))
            assert response.status_code == 202
            response = await client.post(path, json=1)
            assert response.status_code == 401


class TestEvents:
    async def test_workflow_and_step_moves_on_the_stream(
        self, client: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """/events?workflow_id= carries the workflow's moves and its steps', nothing else."""
        flow = await runtime.submit("approve", 1, delay=10)
        async with open_stream(client, f"?workflow_id={flow.id}") as stream:
            await runtime.submit("double", 5)  # not of the workflow: not on its stream
            moves: list[tuple[str, str]] = []
            while ("approve", "waiting") not in moves or ("double", "completed") not in moves:
                data = await stream.event()
                TransitionOut.model_validate(data)
                task = data["task"]
                assert flow.id in (task["id"], task["parent_id"])
                moves.append((task["type"], data["event"]["to"]))
        assert moves[:2] == [("approve", "queued"), ("approve", "running")]
        assert [to for type, to in moves if type == "double"][:3] == [
            "pending",
            "queued",
            "running",
        ]
