"""Queue controls and a rate limit across real processes: a ``trellis serve`` and a
``trellis worker`` on one PostgreSQL database, driven by the ``trellis queues`` CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.e2e.kit import ROOT, Server, clean_env, trellis

from trellis_actors._time import parse_iso

pytestmark = pytest.mark.postgres

APP = "tests.integration.http.limits_app:app"
TASKS = 30


@pytest.fixture
def cluster(pg_url: str) -> Iterator[Server]:
    """A server with 4 workers and a worker-only node with 4 more, on ``pg_url``."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trellis_actors",
            "worker",
            "--store",
            pg_url,
            "--app",
            APP,
            "--workers",
            "4",
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server("--store", pg_url, "--app", APP, "--workers", "4")
    try:
        yield server
    finally:
        assert server.stop() == 0, "".join(server.stderr)
        worker.terminate()
        assert worker.wait(timeout=30) == 0


def wait_until_done(url: str, total: int, timeout: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = httpx.get(f"{url}/tasks", params={"limit": 1000, "include": "result"}).json()[
            "items"
        ]
        if sum(1 for t in items if t["status"] == "completed") >= total:
            return list(items)
        time.sleep(0.1)
    raise AssertionError(f"{total} tasks did not complete within {timeout}s")


def busiest_window(starts: list[float], width: float = 1.0) -> int:
    starts = sorted(starts)
    return max(sum(1 for t in starts if s <= t < s + width) for s in starts)


def test_pause_then_rate_limit_across_two_processes(cluster: Server) -> None:
    """Paused (by the CLI), submitted tasks wait on both nodes; resumed, both nodes run
    them, and no second (by started_at) sees more than 5 starts."""
    url = cluster.url
    paused = trellis("queues", "pause", "default", url=url)
    assert paused.returncode == 0, paused.stderr
    assert "paused queue default" in paused.stdout
    body = [{"type": "limited"} for _ in range(TASKS)]
    assert httpx.post(f"{url}/tasks", json=body).status_code == 201
    # Both nodes hear of the tasks (NOTIFY) and their idle workers claim within this time;
    # a process's claims cannot be counted from here, so this one waits a fixed while.
    time.sleep(1.5)
    listing = trellis("queues", "list", "--json", url=url)
    (queue,) = httpx.get(f"{url}/queues").json()["items"]
    assert (queue["paused"], queue["counts"]["queued"], queue["counts"]["running"]) == (
        True,
        TASKS,
        0,
    ), listing.stdout
    assert trellis("queues", "resume", "default", url=url).returncode == 0
    items = wait_until_done(url, TASKS)
    seconds = [parse_iso(str(t["started_at"])) for t in items]
    assert busiest_window(seconds) <= 5
    assert len({t["result"] for t in items}) == 2  # both processes ran some
