"""A node's log lines, as an operator reads them from ``trellis serve``'s stderr, and its
traces, as a collector receives them."""

from __future__ import annotations

import http.server
import json
import queue
import threading
from collections.abc import Iterator

import httpx
import pytest
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


class _Collector(http.server.BaseHTTPRequestHandler):
    received: queue.Queue[str] = queue.Queue()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.put(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    """An OTLP/HTTP endpoint on 127.0.0.1:0 that records the paths posted to it."""
    _Collector.received = queue.Queue()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestTraces:
    def test_traces_endpoint_alone(self, collector: str) -> None:
        """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone: spans reach it, and the line of a task
        submitted in a traced request carries that trace's id."""
        env = clean_env(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector}/v1/traces",
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
            env.pop(name, None)
        server = Server("--store", "memory://", env=env)
        try:
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            parent = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            httpx.post(f"{server.url}/tasks", json={"type": "echo"}, headers=parent)
            line = json.loads(server.wait_for_log('"task completed"'))
            assert _Collector.received.get(timeout=30) == "/v1/traces"
        finally:
            assert server.stop() == 0, "".join(server.stderr)
        assert line["trace_id"] == trace_id
        assert '"tracing on"' in "".join(server.stderr)
