"""Nodes as processes: ``trellis serve`` and ``trellis worker`` on one PostgreSQL database
list each other, a worker node is probed, and a killed node ages out."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import httpx
import pytest
from tests.e2e.kit import Server, trellis
from tests.integration.conftest import pg_template, pg_url, postgres_server  # noqa: F401

pytestmark = pytest.mark.postgres

WORKER = ("worker", "--bind", "127.0.0.1:0")
PROBES = r"^probes on (\S+)"


def worker(store: str, *args: str) -> Server:
    return Server("--store", store, "--heartbeat", "0.2", *args, command=WORKER, ready=PROBES)


def poll(what: str, check: Any, timeout: float = 20) -> Any:
    """``check()``'s first truthy answer; each try is a round trip to a server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
    raise AssertionError(f"gave up after {timeout}s waiting for {what}")


def test_a_worker_node_answers_its_probes_only(pg_url: str) -> None:  # noqa: F811
    """``trellis worker --bind 127.0.0.1:0`` serves /health, /readyz and /metrics, without
    a token, and nothing of the API."""
    node = worker(pg_url, "--workers", "1")
    try:
        with httpx.Client(base_url=node.url, timeout=10) as client:
            assert client.get("/health").json() == {"status": "alive"}
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            metrics = client.get("/metrics")
            assert metrics.status_code == 200 and "trellis_" in metrics.text
            for path in ("/tasks", "/nodes", "/ui", "/openapi.json"):
                assert client.get(path).status_code == 404, path
    finally:
        assert node.stop() == 0


def test_serve_and_worker_list_each_other_and_a_killed_one_goes_lost(
    pg_url: str,  # noqa: F811
) -> None:
    """A serving node without workers and a worker node: GET /nodes (and ``trellis
    nodes``) lists both; a task runs on the worker node, which it and its events name;
    after SIGKILL the worker node shows lost within a few heartbeats."""
    api = Server("--store", pg_url, "--workers", "0", "--heartbeat", "0.2")
    node = worker(pg_url, "--workers", "2")
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:

            def both() -> list[dict[str, Any]] | None:
                items: list[dict[str, Any]] = client.get("/nodes").json()["items"]
                return items if len(items) == 2 else None

            listed = {item["workers"]: item for item in poll("two nodes", both)}
            assert set(listed) == {0, 2}
            assert all(item["state"] == "up" and item["pid"] > 0 for item in listed.values())
            worker_id = listed[2]["id"]
            assert listed[2]["pid"] == node.process.pid

            shown = trellis("nodes", "--json", url=api.url)
            assert shown.returncode == 0, shown.stderr
            assert {item["id"] for item in json.loads(shown.stdout)} == set(
                item["id"] for item in listed.values()
            )
            table = trellis("nodes", url=api.url)
            assert worker_id in table.stdout and "STATE" in table.stdout

            task = client.post("/tasks", json={"type": "echo", "payload": 1}).json()
            done = client.get(f"/tasks/{task['id']}/wait", params={"timeout": 20}).json()
            assert done["status"] == "completed"
            assert done["node"] == worker_id and done["worker"] in ("worker-1", "worker-2")
            events = client.get(f"/tasks/{task['id']}/events").json()["items"]
            where = [(e["to"], e["node"], e["worker"]) for e in events]
            assert ("running", worker_id, done["worker"]) in where
            assert where[-1] == ("completed", worker_id, done["worker"])
            workers = client.get("/workers").json()["items"]
            assert {w["node"] for w in workers} == {worker_id}

            node.process.send_signal(signal.SIGKILL)
            node.process.wait(timeout=10)

            def lost() -> bool:
                states = {
                    item["id"]: item["state"] for item in client.get("/nodes").json()["items"]
                }
                return states.get(worker_id) == "lost"

            poll("the killed node lost", lost)
            assert client.get("/workers").json()["items"] == []
    finally:
        node.stop()
        assert api.stop() == 0
