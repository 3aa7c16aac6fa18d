"""The built-in ``http_check`` task against a real local HTTP server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import serve
from quart_trio import QuartTrio

import trellis_actors as ta
from trellis_actors.observability.metrics import Metrics


def target_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.route("/up")
    async def up() -> tuple[str, int]:
        return "ok", 200

    @app.route("/teapot")
    async def teapot() -> tuple[str, int]:
        return "short and stout", 418

    @app.route("/slow")
    async def slow() -> tuple[str, int]:
        await trio.sleep(30)
        return "late", 200

    return app


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, target_app(), config)
        yield binds[0]
        nursery.cancel_scope.cancel()


def free_port_url() -> str:
    """An address nothing listens on: bind a socket, read its port, close it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def check(rt: ta.Runtime, payload: dict[str, object]) -> ta.Task:
    task = await rt.submit("http_check", payload)
    return await rt.wait(task.id, timeout=20)


class TestHttpCheck:
    """http_check records status, latency and whether the target answered as expected."""

    async def test_up(self, base_url: str) -> None:
        """A 200 from the target is ok, with a latency."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": f"{base_url}/up"})
        assert done.status is ta.TaskStatus.COMPLETED
        assert done.result["ok"] is True
        assert done.result["status_code"] == 200
        assert done.result["latency_ms"] > 0

    async def test_wrong_status(self, base_url: str) -> None:
        """An unexpected status is recorded as not ok, naming both codes."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": f"{base_url}/teapot"})
        assert done.result["ok"] is False
        assert done.result["status_code"] == 418
        assert "expected status 200, got 418" in done.result["error"]

    async def test_expected_status(self, base_url: str) -> None:
        """expected_status changes what counts as up."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": f"{base_url}/teapot", "expected_status": 418})
        assert done.result["ok"] is True

    async def test_slow_target_times_out(self, base_url: str) -> None:
        """A target slower than the timeout is not ok and has no status."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": f"{base_url}/slow", "timeout": 0.2})
        assert done.result["ok"] is False
        assert done.result["status_code"] is None
        assert "no answer within 0.2s" in done.result["error"]

    async def test_refused_connection(self) -> None:
        """A refused connection is not ok and says why."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": free_port_url()})
        assert done.result["ok"] is False
        assert done.result["status_code"] is None
        assert "Connect" in done.result["error"]

    async def test_bad_payload_fails_without_retry(self) -> None:
        """A payload without a usable url fails at once, naming the field."""
        async with ta.open_runtime(workers=2) as rt:
            done = await check(rt, {"url": "ftp://example.com"})
        assert done.status is ta.TaskStatus.DEAD
        assert done.attempt == 1
        assert done.error is not None and "url" in done.error.message

    async def test_metrics(self, base_url: str) -> None:
        """Completed checks set trellis_http_check_up and the latency gauge per target."""
        metrics = Metrics()
        async with ta.open_runtime(workers=2) as rt, trio.open_nursery() as nursery:
            await nursery.start(metrics.run, rt)
            await check(rt, {"url": f"{base_url}/up"})
            await check(rt, {"url": f"{base_url}/teapot"})
            await trio.testing.wait_all_tasks_blocked()  # the observer has caught up
            nursery.cancel_scope.cancel()
        get = metrics.registry.get_sample_value
        assert get("trellis_http_check_up", {"target": f"{base_url}/up"}) == 1.0
        assert get("trellis_http_check_up", {"target": f"{base_url}/teapot"}) == 0.0
        latency = get("trellis_http_check_latency_seconds", {"target": f"{base_url}/up"})
        assert latency is not None and latency > 0
