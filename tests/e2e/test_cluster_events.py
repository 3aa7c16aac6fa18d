"""Cluster-wide events: ``trellis serve`` and ``trellis worker`` processes on one
PostgreSQL database. The API node's ``/events`` streams what the worker node does, and a
client resumes with ``Last-Event-ID`` exactly after the last event it read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.kit import Server
from tests.e2e.test_nodes import poll, worker
from tests.integration.conftest import pg_template, pg_url, postgres_server  # noqa: F401

pytestmark = pytest.mark.postgres

Seen = tuple[int, str, str, str | None]  # (event id, task id, to, node)


def sse(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events as {field: value}, comments left out."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def read_until(
    client: httpx.Client, task_ids: set[str], headers: dict[str, str] | None = None
) -> list[Seen]:
    """Open /events and read transitions until every task of ``task_ids`` has completed
    (two workers may complete them in any order)."""
    left = set(task_ids)
    seen: list[Seen] = []
    with client.stream("GET", "/events", headers=headers) as stream:
        assert stream.status_code == 200
        for event in sse(stream.iter_lines()):
            if event.get("event") != "transition":
                continue
            data: dict[str, Any] = json.loads(event["data"])
            moved = data["event"]
            seen.append((int(event["id"]), moved["task_id"], moved["to"], moved["node"]))
            if moved["to"] == "completed":
                left.discard(moved["task_id"])
            if not left:
                return seen
    raise AssertionError("the stream ended before the task completed")


def submit(client: httpx.Client, payload: Any) -> str:
    response = client.post("/tasks", json={"type": "echo", "payload": payload})
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_the_api_node_streams_the_worker_nodes_work_and_resumes_exactly(
    pg_url: str,  # noqa: F811
) -> None:
    """A task run by the worker node is seen completed on the API node's /events, with
    the worker node named; a client that reconnects with Last-Event-ID gets exactly the
    events after it (those written while it was away included), none twice, none lost."""
    api = Server("--store", pg_url, "--workers", "0", "--heartbeat", "0.2")
    node = worker(pg_url, "--workers", "2")
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            nodes = poll("two nodes", lambda: len(client.get("/nodes").json()["items"]) == 2)
            assert nodes
            worker_id = next(
                item["id"] for item in client.get("/nodes").json()["items"] if item["workers"]
            )
            first = submit(client, 1)
            # The stream starts from now: the task was submitted before it, but the
            # events it missed are what Last-Event-ID=0 replays.
            before = read_until(client, {first}, {"Last-Event-ID": "0"})
            mine = [(to, node_id) for _, task_id, to, node_id in before if task_id == first]
            assert mine == [
                ("pending", None),
                ("queued", None),
                ("running", worker_id),
                ("completed", worker_id),
            ]
            mark = before[2][0]  # read up to the first task's start, then disconnected
            later = [submit(client, n) for n in range(2, 6)]
            for task_id in later:
                done = client.get(f"/tasks/{task_id}/wait", params={"timeout": 20}).json()
                assert done["status"] == "completed"
            after = read_until(client, set(later), {"Last-Event-ID": str(mark)})

            ids = [event_id for event_id, *_ in after]
            assert len(set(ids)) == len(ids) and mark not in ids
            assert after[: len(before) - 3] == before[3:]  # exactly what followed the mark
            for task_id in [first, *later]:
                history = client.get(f"/tasks/{task_id}/events").json()["items"]
                streamed = [to for _, moved, to, _ in before[:3] + after if moved == task_id]
                assert streamed == [event["to"] for event in history], task_id
    finally:
        node.stop()
        assert api.stop() == 0
