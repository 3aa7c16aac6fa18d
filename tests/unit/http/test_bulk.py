"""``POST /tasks/bulk/{cancel,requeue,purge}``: a filter's tasks, answered with a count."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from tests.unit.http.kit import Probe

from trellis_actors import Runtime
from trellis_actors.http.schemas import BulkOut


class TestBulkCancel:
    async def test_cancels_the_selected_tasks_and_stops_a_running_handler(
        self, client: Any, runtime: Runtime, probe: Probe
    ) -> None:
        """A dry run counts; the cancel then touches the same tasks, running or not."""
        running = await runtime.submit("block")
        await probe.started.wait()
        waiting = [await runtime.submit("block", i, delay=60) for i in range(3)]
        other = await runtime.submit("echo", delay=60)
        dry = await client.post("/tasks/bulk/cancel", json={"type": "block", "dry_run": True})
        assert await dry.get_json() == {"touched": 4, "dry_run": True}
        assert (await runtime.get(running.id)).status.value == "running"
        response = await client.post("/tasks/bulk/cancel", json={"type": "block"})
        body = await response.get_json()
        BulkOut.model_validate(body)
        assert (response.status_code, body) == (200, {"touched": 4, "dry_run": False})
        with trio.fail_after(5):
            await probe.stopped.wait()
        for task in [running, *waiting]:
            assert (await runtime.get(task.id)).status.value == "cancelled"
        assert (await runtime.get(other.id)).status.value == "pending"

    async def test_status_and_creation_window_narrow_it(
        self, client: Any, runtime: Runtime
    ) -> None:
        delayed = await runtime.submit("echo", delay=60)
        body = {"status": ["queued", "running"], "created_before": "9999-01-01T00:00:00Z"}
        none = await client.post("/tasks/bulk/cancel", json=body)
        assert (await none.get_json())["touched"] == 0
        body = {"status": "pending", "created_after": "2000-01-01"}
        one = await client.post("/tasks/bulk/cancel", json=body)
        assert (await one.get_json())["touched"] == 1
        assert (await runtime.get(delayed.id)).status.value == "cancelled"


class TestBulkRequeueAndPurge:
    async def test_requeue_dead_then_purge_ended(self, client: Any, runtime: Runtime) -> None:
        """Dead tasks go back; a purge then deletes ended tasks with their history."""
        failed = [await runtime.submit("fail", i) for i in range(2)]
        for task in failed:
            await runtime.wait(task.id, timeout=5)
        requeued = await client.post("/tasks/bulk/requeue", json={"type": "fail"})
        assert (await requeued.get_json())["touched"] == 2
        for task in failed:
            assert (await runtime.wait(task.id, timeout=5)).status.value == "dead"
        purged = await client.post("/tasks/bulk/purge", json={"status": "dead"})
        assert (await purged.get_json())["touched"] == 2
        for task in failed:
            assert (await client.get(f"/tasks/{task.id}")).status_code == 404
            assert (await client.get(f"/tasks/{task.id}/events")).status_code == 404


class TestBulkRefusals:
    @pytest.mark.parametrize(
        ("path", "body", "field", "says"),
        [
            ("cancel", {}, "status", "needs a filter"),
            ("cancel", {"status": "completed"}, "status", "touches only"),
            ("requeue", {"status": "queued"}, "status", "touches only dead"),
            ("purge", {"status": "running"}, "status", "touches only"),
            ("cancel", {"status": "sleepy"}, "status", "unknown status"),
            ("cancel", {"status": []}, "status", "non-empty list"),
            ("cancel", {"sort": "id"}, "sort", None),
            ("cancel", {"created_after": "yesterday"}, "created_after", "ISO 8601"),
            (
                "cancel",
                {"created_after": "2030-01-01", "created_before": "2020-01-01"},
                "created_after",
                "earlier than",
            ),
            ("cancel", {"type": ""}, "type", None),
        ],
    )
    async def test_a_bad_filter_answers_400_naming_the_field(
        self, client: Any, path: str, body: dict[str, Any], field: str, says: str | None
    ) -> None:
        response = await client.post(f"/tasks/bulk/{path}", json=body)
        error = (await response.get_json())["error"]
        assert (response.status_code, error["field"]) == (400, field), error
        if says is not None:
            assert says in error["message"]

    async def test_a_body_that_is_not_json_answers_400(self, client: Any) -> None:
        response = await client.post("/tasks/bulk/cancel", data=b"{", headers={})
        assert response.status_code == 400
