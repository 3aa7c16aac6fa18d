"""What the node reports: queues, workers, task types, the actor tree, health, metrics."""

from __future__ import annotations

from typing import Any

from trellis_actors import Runtime
from trellis_actors.http.schemas import ActorOut, QueueList, ReadyOut, TaskTypeList, WorkerList


class TestQueues:
    async def test_depth_per_queue_and_status(self, client: Any, runtime: Runtime) -> None:
        """Each queue lists every status; depth counts the waiting tasks."""
        await runtime.submit_many([{"type": "echo", "queue": "mail", "delay": 60}] * 2)
        done = await runtime.submit("echo")
        await runtime.wait(done.id, timeout=5)
        body = await (await client.get("/queues")).get_json()
        QueueList.model_validate(body)
        queues = {queue["name"]: queue for queue in body["items"]}
        assert queues["mail"]["depth"] == 2
        assert queues["mail"]["counts"]["pending"] == 2
        assert queues["default"]["counts"]["completed"] == 1
        assert queues["default"]["depth"] == 0
        assert len(queues["default"]["counts"]) == 9  # every status


class TestWorkers:
    async def test_each_worker(self, client: Any, runtime: Runtime) -> None:
        """Every worker is listed with its state and tasks done."""
        task = await runtime.submit("echo")
        await runtime.wait(task.id, timeout=5)
        body = await (await client.get("/workers")).get_json()
        WorkerList.model_validate(body)
        assert [w["name"] for w in body["items"]] == ["worker-1", "worker-2"]
        assert {w["state"] for w in body["items"]} == {"running"}
        assert sum(w["tasks_done"] for w in body["items"]) >= 1


class TestTaskTypes:
    async def test_registered(self, client: Any) -> None:
        """The registered types are listed with their policies."""
        body = await (await client.get("/task-types")).get_json()
        TaskTypeList.model_validate(body)
        names = {t["name"] for t in body["items"]}
        assert {"echo", "sleep", "fail", "block"} <= names


class TestDebug:
    async def test_tree(self, client: Any) -> None:
        """The supervision tree comes back with the runtime's actors."""
        body = await (await client.get("/debug")).get_json()
        ActorOut.model_validate(body)
        names = {child["name"] for child in body["children"]}
        assert {"store", "queue", "workers"} <= names


class TestHealth:
    async def test_alive(self, client: Any) -> None:
        """/health answers 200."""
        response = await client.get("/health")
        assert (response.status_code, await response.get_json()) == (200, {"status": "alive"})

    async def test_ready(self, client: Any) -> None:
        """/readyz answers 200 while the runtime runs."""
        response = await client.get("/readyz")
        body = await response.get_json()
        ReadyOut.model_validate(body)
        assert response.status_code == 200
        assert body == {
            "ready": True,
            "store": True,
            "supervisor": "running",
            "draining": False,
            "checks": {},
        }

    async def test_not_ready_once_draining(self, client: Any, runtime: Runtime) -> None:
        """Marked as draining (a signal arrived), /readyz turns 503 while /health stays 200."""
        runtime.mark_draining()
        response = await client.get("/readyz")
        body = await response.get_json()
        assert response.status_code == 503
        assert body == {
            "ready": False,
            "store": True,
            "supervisor": "running",
            "draining": True,
            "checks": {},
        }
        assert (await client.get("/health")).status_code == 200

    async def test_not_ready_once_stopped(self, client: Any, runtime: Runtime) -> None:
        """/readyz answers 503 with the failing checks once the runtime has stopped."""
        await runtime.shutdown()
        response = await client.get("/readyz")
        body = await response.get_json()
        assert response.status_code == 503
        assert body["ready"] is False
        assert body["draining"] is True
        assert (await client.get("/health")).status_code == 200


class TestMetrics:
    async def test_prometheus_text(self, client: Any) -> None:
        """/metrics exposes the registry given to the app, as Prometheus text."""
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "trellis_test_things_total 1.0" in (await response.get_data(as_text=True))

    async def test_openmetrics_on_request(self, client: Any) -> None:
        """An Accept header asking for OpenMetrics gets it."""
        accept = "application/openmetrics-text; version=1.0.0"
        response = await client.get("/metrics", headers={"Accept": accept})
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
