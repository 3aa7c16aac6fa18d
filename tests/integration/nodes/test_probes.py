"""Every node can be probed: readiness includes the App's checks; a worker node serves
/health, /readyz and /metrics and nothing else; GET /nodes and the cluster's /workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from trellis_actors import App, Runtime, open_runtime
from trellis_actors.errors import ConfigurationError
from trellis_actors.http import create_app
from trellis_actors.http.probes import create_probe_app
from trellis_actors.http.schemas import NodeList, ReadyOut, WorkerList
from trellis_actors.observability.metrics import Metrics


@asynccontextmanager
async def api(app: App, **config: Any) -> AsyncIterator[tuple[Runtime, Any]]:
    async with (
        open_runtime(app, workers=2, readiness_interval=1.0, **config) as rt,
        create_app(rt).test_app() as test_app,
    ):
        yield rt, test_app.test_client()


async def readyz(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body = await response.get_json()
    ReadyOut.model_validate(body)
    return response.status_code, body


class TestReadinessChecks:
    async def test_a_failing_check_is_named_then_recovers(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """While a check answers False, /readyz is 503 naming it; then 200 again."""
        app = App()
        healthy = False

        @app.readiness_check
        async def database() -> bool:
            return healthy

        @app.readiness_check(name="cache")
        async def cache_check() -> None:
            return None  # None is fine: only False or an exception fail

        async with api(app) as (_, client):
            await trio.sleep(0.5)
            status, body = await readyz(client)
            assert status == 503 and body["ready"] is False
            assert body["checks"] == {"database": "failed", "cache": "ok"}
            healthy = True
            await trio.sleep(1.5)
            status, body = await readyz(client)
            assert body["checks"] == {"database": "ok", "cache": "ok"}
            assert status == 200, body

    async def test_a_hanging_check_times_out(self, autojump_clock: trio.testing.MockClock) -> None:
        """A check that does not answer within its timeout makes the node not ready."""
        app = App()

        @app.readiness_check(timeout=0.5)
        async def stuck() -> bool:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        async with api(app) as (_, client):
            await trio.sleep(0.8)
            status, body = await readyz(client)
        assert status == 503 and body["checks"] == {"stuck": "timed out"}

    async def test_a_raising_check_says_why(self, autojump_clock: trio.testing.MockClock) -> None:
        """An exception is the check's answer, shown with its type."""
        app = App()

        @app.readiness_check
        async def broker() -> bool:
            raise ConnectionError("refused")

        async with api(app) as (_, client):
            await trio.sleep(0.5)
            status, body = await readyz(client)
        assert status == 503 and body["checks"] == {"broker": "ConnectionError: refused"}

    async def test_a_def_check_runs_in_a_thread(self) -> None:
        """A plain ``def`` check runs in a worker thread; its answer is kept like any."""
        app = App()
        threads: list[bool] = []

        @app.readiness_check
        def disk() -> bool:
            threads.append(trio.lowlevel.in_trio_run())
            return False

        async with open_runtime(app, workers=1, readiness_interval=0.05) as rt:
            with trio.fail_after(10):
                while (await rt.readiness())[0].error == "pending":  # noqa: ASYNC110
                    await trio.sleep(0.01)
            (result,) = await rt.readiness()
        assert (result.name, result.ok, result.error) == ("disk", False, "failed")
        assert threads and not any(threads)

    def test_names_are_unique(self) -> None:
        """Two checks of one name are refused when declared."""
        app = App()
        app.readiness_check(lambda: True, name="db")
        with pytest.raises(ConfigurationError, match="readiness check named 'db' is already"):
            app.readiness_check(lambda: True, name="db")
        with pytest.raises(ConfigurationError, match="timeout must be > 0"):
            app.readiness_check(lambda: True, name="other", timeout=0)


class TestProbeApp:
    async def test_only_the_probes(self, autojump_clock: trio.testing.MockClock) -> None:
        """A worker node's probe app answers /health, /readyz and /metrics without a
        token, and 404 for the API."""
        async with (
            open_runtime(App(), workers=1) as rt,
            create_probe_app(rt, Metrics()).test_app() as test_app,
        ):
            client = test_app.test_client()
            assert (await client.get("/health")).status_code == 200
            status, body = await readyz(client)
            assert status == 200 and body["ready"] is True
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert b"trellis_" in await metrics.get_data()
            for path in ("/tasks", "/nodes", "/ui", "/debug"):
                assert (await client.get(path)).status_code == 404, path
            assert (await client.post("/tasks", json={"type": "echo"})).status_code in (
                404,
                405,
            )


class TestNodesRoute:
    async def test_nodes_and_workers(self, autojump_clock: trio.testing.MockClock) -> None:
        """GET /nodes lists the node with its fields; /workers names each worker's node."""
        async with api(App()) as (rt, client):
            body = await (await client.get("/nodes")).get_json()
            NodeList.model_validate(body)
            (node,) = body["items"]
            assert (node["id"], node["state"], node["workers"]) == (rt.node, "up", 2)
            workers = await (await client.get("/workers")).get_json()
            WorkerList.model_validate(workers)
            assert {w["node"] for w in workers["items"]} == {rt.node}
