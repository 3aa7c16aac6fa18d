"""The API over a real socket: auth, body limits, server-sent events, error shapes."""

from __future__ import annotations

import json

import httpx
from tests.e2e.kit import TOKEN, Server

BEARER = {"Authorization": f"Bearer {TOKEN}"}


class TestAuth:
    def test_token_required(self, secured_server: Server) -> None:
        """Without the token: 401 with WWW-Authenticate; with it: the API answers."""
        url = secured_server.url
        refused = httpx.get(f"{url}/tasks")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.json()["error"]["code"] == "unauthorized"
        wrong = httpx.get(f"{url}/tasks", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/tasks", headers=BEARER).status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 401

    def test_probes_open(self, secured_server: Server) -> None:
        """/health and /readyz need no token."""
        assert httpx.get(f"{secured_server.url}/health").status_code == 200
        assert httpx.get(f"{secured_server.url}/readyz").status_code == 200


class TestLimits:
    def test_oversize_body(self, secured_server: Server) -> None:
        """A body over --max-body answers 413 and stores nothing."""
        body = {"type": "echo", "payload": "x" * 5000, "idempotency_key": "too-big"}
        response = httpx.post(f"{secured_server.url}/tasks", json=body, headers=BEARER)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        listed = httpx.get(f"{secured_server.url}/tasks", headers=BEARER).json()
        assert all(task["idempotency_key"] != "too-big" for task in listed["items"])

    def test_error_shapes(self, server: Server) -> None:
        """Unknown routes, wrong methods and bad JSON get JSON errors, never a 5xx."""
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/nowhere").json()["error"]["code"] == "not_found"
            assert client.patch("/tasks").status_code == 405
            bad = client.post("/tasks", content=b"{", headers={"Content-Type": "application/json"})
            assert (bad.status_code, bad.json()["error"]["code"]) == (400, "malformed_json")


class TestEvents:
    def test_stream_of_an_echo_task(self, server: Server) -> None:
        """/events streams the transitions of a submitted echo task, with the task."""
        seen: list[str] = []
        timeout = httpx.Timeout(10.0)
        with (
            httpx.Client(base_url=server.url, timeout=timeout) as client,
            client.stream("GET", "/events", params={"type": "echo"}) as stream,
        ):
            assert stream.headers["Content-Type"] == "text/event-stream"
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            assert next(lines) == ": subscribed"  # nothing submitted from now on is missed
            task = client.post("/tasks", json={"type": "echo", "payload": [1, 2]}).json()
            for line in lines:
                if not line.startswith("data: "):
                    continue
                data = json.loads(line.removeprefix("data: "))
                if data["event"]["task_id"] == task["id"]:
                    seen.append(data["event"]["to"])
                    if data["event"]["to"] == "completed":
                        assert data["task"]["result"] == [1, 2]
                        break
        assert seen == ["pending", "queued", "running", "completed"]
        assert httpx.get(f"{server.url}/health").status_code == 200  # the disconnect was fine
