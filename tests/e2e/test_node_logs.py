"""A node's log lines, as an operator reads them from ``trellis serve``'s stderr."""

from __future__ import annotations

import json

import httpx
from tests.e2e.kit import Server, clean_env


class TestTaskLines:
    def test_a_completion_is_logged(self) -> None:
        """A completed task is one JSON line naming its logger, node and worker."""
        server = Server("--store", "memory://", "--workers", "1")
        try:
            task = httpx.post(f"{server.url}/tasks", json={"type": "echo", "queue": "q1"}).json()
            line = json.loads(server.wait_for_log('"task completed"'))
        finally:
            assert server.stop() == 0, "".join(server.stderr)
        assert line["logger"] == "trellis.tasks"
        assert line["level"] == "info"
        assert (line["task_id"], line["task_type"], line["queue"]) == (task["id"], "echo", "q1")
        assert (line["status"], line["attempt"], line["error"]) == ("completed", 1, None)
        assert line["worker"] == "worker-1" and line["node"]
        assert line["duration"] >= 0

    def test_quiet(self) -> None:
        """TRELLIS_LOG_TASKS=failures: no line for a completion."""
        server = Server(
            "--store", "memory://", env=clean_env(TRELLIS_LOG_TASKS="failures")
        )  # fmt: skip
        try:
            task = httpx.post(f"{server.url}/tasks", json={"type": "echo"}).json()
            waited = httpx.get(f"{server.url}/tasks/{task['id']}/wait", params={"timeout": 10})
            assert waited.json()["status"] == "completed"
        finally:
            assert server.stop() == 0, "".join(server.stderr)
        assert "task completed" not in "".join(server.stderr)
