"""Workflows through a real ``trellis serve``: the clients' ``signal`` and ``workflow``,
and the ``trellis signal`` and ``trellis workflow`` commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from tests import asyncio_kit
from tests.e2e.kit import Server, trellis
from tests.e2e.workflow_kit import until, waits_for

from trellis_actors import NotAWorkflow, TaskNotFound, TaskStatus, ValidationError, WorkflowEnded
from trellis_actors.client import AsyncClient, Client
from trellis_actors.workflows import EntryKind, EntryOutcome

NO_SUCH_ID = str(uuid.UUID(int=1))


@pytest.fixture(scope="module")
def flows() -> Iterator[Server]:
    running = Server("--app", "tests.e2e.workflow_app:app", "--store", "memory://")
    yield running
    assert running.stop() == 0, "".join(running.stderr)


@pytest.fixture
def client(flows: Server) -> Iterator[Client]:
    with Client(flows.url) as client:
        yield client


class TestClient:
    def test_signal_and_read(self, client: Client, flows: Server) -> None:
        """A workflow waiting for a signal gets the one the client sends; its history
        reads back typed, steps and all."""
        flow = client.submit("approval", 4)
        state = until(flows.url, flow.id, waits_for(EntryKind.SIGNAL))
        assert [e.kind for e in state.history] == [
            EntryKind.STEP,
            EntryKind.SLEEP,
            EntryKind.SIGNAL,
        ]
        assert state.history[0].step_id == state.steps[0].id
        assert state.steps[0].parent_id == flow.id
        assert state.history[2].wake_at is not None  # the signal's deadline
        client.signal(flow.id, "approved", {"by": "ops"})
        done = client.wait(flow.id, timeout=30)
        assert (done.status, done.result) == (
            TaskStatus.COMPLETED,
            {"doubled": 8, "answer": {"by": "ops"}},
        )
        state = client.workflow(flow.id)
        assert state.history[2].outcome is EntryOutcome.RECEIVED
        assert state.signals[0].consumed_by == 3
        with pytest.raises(WorkflowEnded, match="can no longer receive signals"):
            client.signal(flow.id, "approved")

    def test_refusals(self, client: Client) -> None:
        """Unknown id, a task that is not a workflow, a bad name or payload."""
        with pytest.raises(TaskNotFound):
            client.signal(NO_SUCH_ID, "go")
        with pytest.raises(TaskNotFound):
            client.workflow(NO_SUCH_ID)
        task = client.submit("echo", 1, delay=3600)
        with pytest.raises(NotAWorkflow, match="not a workflow"):
            client.signal(task.id, "go")
        with pytest.raises(NotAWorkflow):
            client.workflow(task.id)
        with pytest.raises(ValidationError) as caught:
            client.signal(task.id, "")
        assert caught.value.field == "name"
        with pytest.raises(ValidationError) as caught:
            client.signal(task.id, "go", float("nan"))
        assert caught.value.field == "payload"
        client.cancel(task.id)

    def test_async_client_under_trio_and_asyncio(self, flows: Server) -> None:
        """AsyncClient signals and reads alike under either loop."""

        async def scenario() -> Any:
            async with AsyncClient(flows.url) as client:
                flow = await client.submit("approval", 1)
                await client.signal(flow.id, "approved", "early")  # kept for the wait
                done = await client.wait(flow.id, timeout=30)
                state = await client.workflow(flow.id)
                return done.result, [e.outcome for e in state.history]

        expected = (
            {"doubled": 2, "answer": "early"},
            [EntryOutcome.COMPLETED, EntryOutcome.ELAPSED, EntryOutcome.RECEIVED],
        )
        assert trio.run(scenario) == expected
        assert asyncio_kit.run(scenario) == expected


class TestCommands:
    def test_signal_and_workflow(self, flows: Server, client: Client) -> None:
        """trellis signal sends the payload; trellis workflow shows the history."""
        flow = client.submit("approval", 5)
        until(flows.url, flow.id, waits_for(EntryKind.SIGNAL))
        shown = trellis("workflow", flow.id, url=flows.url)
        assert shown.returncode == 0, shown.stderr
        assert "status:       waiting" in shown.stdout
        lines = shown.stdout.splitlines()
        assert any(line.split()[:4] == ["3", "signal", "approved", "waiting"] for line in lines)
        sent = trellis("signal", flow.id, "approved", "--payload", '{"ok": true}', url=flows.url)
        assert sent.returncode == 0, sent.stderr
        assert f"sent signal 'approved' to workflow {flow.id}" in sent.stderr
        client.wait(flow.id, timeout=30)
        shown = trellis("workflow", flow.id, "--json", url=flows.url)
        data = json.loads(shown.stdout)
        assert data["task"]["result"] == {"doubled": 10, "answer": {"ok": True}}
        assert [e["outcome"] for e in data["history"]] == ["completed", "elapsed", "received"]
        again = trellis("signal", flow.id, "approved", url=flows.url)
        assert again.returncode == 1
        assert "can no longer receive signals" in again.stderr

    def test_exit_statuses(self, flows: Server) -> None:
        """Unknown id or a bad payload: 2."""
        unknown = trellis("signal", NO_SUCH_ID, "go", url=flows.url)
        assert unknown.returncode == 2, unknown.stderr
        bad = trellis("signal", NO_SUCH_ID, "go", "--payload", "{nope", url=flows.url)
        assert bad.returncode == 2
        assert "--payload" in bad.stderr
        assert trellis("workflow", NO_SUCH_ID, url=flows.url).returncode == 2
