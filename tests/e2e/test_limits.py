"""One client cannot exhaust a node: a real ``trellis serve`` keeps its memory bounded
while listing big tasks, and refuses connections and event streams past its caps."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.kit import Server

#: Tasks stored, each with a payload of about a MiB.
TASKS = 60
PAYLOAD = "x" * 1_000_000
#: How much the server's peak memory may grow while it answers the listings (a listing
#: with every payload held ~60 MB per answer, four at once well past 200 MB).
GROWTH_BOUND = 64 * 1024 * 1024
MAX_PAGE = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str]]]:
    """A server on a SQLite file holding 60 delayed tasks of about 1 MiB each, newest
    first."""
    path: Path = tmp_path_factory.mktemp("big") / "big.db"
    server = Server("--store", f"sqlite:///{path}", "--max-body", "2000000")
    ids = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(TASKS):
            body = {"type": "echo", "payload": {"n": i, "pad": PAYLOAD}, "delay": 3600}
            response = client.post("/tasks", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    yield server, ids[::-1]
    assert server.stop() == 0, "".join(server.stderr)


def status_kb(pid: int, name: str) -> int:
    """A ``/proc/PID/status`` figure (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {name} in /proc/{pid}/status")


class TestMemory:
    def test_concurrent_listings_keep_the_server_small(self, big: tuple[Server, list[str]]) -> None:
        """Four clients asking for GET /tasks?limit=1000 three times each at once: the
        answers are summaries, and the server's peak RSS grows by less than 64 MiB."""
        server, ids = big
        pid = server.process.pid
        url = f"{server.url}/tasks?limit=1000"
        assert len(httpx.get(url, timeout=60).json()["items"]) == TASKS  # warm
        with contextlib.suppress(OSError):  # start the peak (VmHWM) afresh at the RSS
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        before = status_kb(pid, "VmRSS")
        sizes: list[int] = []
        bodies: list[dict[str, Any]] = []
        failures: list[BaseException] = []

        def lists() -> None:
            try:
                with httpx.Client(timeout=120) as client:
                    for _ in range(3):
                        response = client.get(url)
                        sizes.append(len(response.content))
                        bodies.append(response.json())
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=lists) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        peak = status_kb(pid, "VmHWM")
        print(
            f"RSS {before / 2**20:.0f} MiB before, peak {peak / 2**20:.0f} MiB; "
            f"answers of {max(sizes)} bytes"
        )
        assert peak - before < GROWTH_BOUND
        assert max(sizes) < 100_000
        for body in bodies:
            assert [item["id"] for item in body["items"]] == ids
            assert not any("payload" in item for item in body["items"])

    def test_with_payloads_a_page_stops_at_the_byte_cap(
        self, big: tuple[Server, list[str]]
    ) -> None:
        """include=payload pages hold what fits in 8 MiB; their cursors reach every task
        once."""
        server, ids = big
        seen: list[str] = []
        pages = []
        cursor = None
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while True:
                params = {"limit": "1000", "include": "payload"}
                if cursor is not None:
                    params["cursor"] = cursor
                response = client.get("/tasks", params=params)
                assert len(response.content) <= MAX_PAGE
                body = json.loads(response.content)
                assert all(item["payload"]["pad"] == PAYLOAD for item in body["items"])
                assert not any("result" in item for item in body["items"])
                seen += [item["id"] for item in body["items"]]
                pages.append(len(body["items"]))
                cursor = body["next_cursor"]
                if cursor is None:
                    break
                assert cursor == seen[-1]
        assert seen == ids
        assert 1 < pages[0] < TASKS and len(pages) > 1


def open_streams(stack: ExitStack, client: httpx.Client, count: int) -> list[Iterator[str]]:
    """``count`` event streams, each read up to its ``: subscribed`` line. Keep the
    line iterators: closing one (as a ``break`` out of it does) closes its connection."""
    kept = []
    for _ in range(count):
        response = stack.enter_context(client.stream("GET", "/events"))
        assert response.status_code == 200
        lines = response.iter_lines()
        while next(lines) != ": subscribed":
            pass
        kept.append(lines)
    return kept


class TestCaps:
    def test_requests_past_max_connections_get_503(self) -> None:
        """With two streams holding both slots, a third request is answered 503 with
        Retry-After and Connection: close; once a stream ends, requests are served."""
        server = Server("--store", "memory://", "--max-connections", "2")
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client, ExitStack() as stack:
                streams = open_streams(stack, client, 2)
                refused = httpx.get(f"{server.url}/health", timeout=10)
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "5"
                assert refused.headers["connection"] == "close"
                assert refused.json()["error"]["code"] == "too_many_connections"
                assert len(streams) == 2
                stack.close()  # one client's streams end
                for _ in range(200):  # the server notices the streams closed
                    if httpx.get(f"{server.url}/health", timeout=10).status_code == 200:
                        break
                else:
                    raise AssertionError("the slots were never given back")
        finally:
            assert server.stop() == 0, "".join(server.stderr)

    def test_event_streams_past_the_cap_get_503_with_a_json_error(self) -> None:
        """--max-event-streams 1: a second stream is refused with a JSON error body."""
        server = Server("--store", "memory://", "--max-event-streams", "1")
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client, ExitStack() as stack:
                streams = open_streams(stack, client, 1)
                refused = httpx.get(f"{server.url}/events", timeout=10)
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "5"
                error = refused.json()["error"]
                assert error["code"] == "too_many_streams"
                assert "at most 1 event streams" in error["message"]
                assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
                assert len(streams) == 1
        finally:
            assert server.stop() == 0, "".join(server.stderr)
