"""Metrics from the lifecycle stream, exposed in the Prometheus text format."""

from __future__ import annotations

import trio
import trio.testing
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import trellis_actors as ta
from trellis_actors import testing
from trellis_actors.actors import ActorSnapshot
from trellis_actors.observability.metrics import Metrics


def make_app() -> ta.App:
    app = ta.App()

    @app.task(max_attempts=2, backoff=ta.Backoff(initial=1, maximum=1, jitter=0))
    async def boom(ctx: ta.TaskContext, payload: object) -> None:
        raise RuntimeError("boom")

    @app.periodic(every="10s")
    async def tick(ctx: ta.TaskContext, payload: object) -> None:
        return None

    return app


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition with prometheus-client's own parser."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestMetrics:
    """Counters follow transitions; gauges are read from the store and the actor tree."""

    async def test_exposition(self, autojump_clock: trio.testing.MockClock) -> None:
        """Task, failure, duration, depth, worker, actor and fire metrics all parse."""
        metrics = Metrics()
        async with testing.open_test_runtime(make_app()) as rt, trio.open_nursery() as nursery:
            await nursery.start(metrics.run, rt)
            echo = await rt.submit("echo", {"n": 1})
            boom = await rt.submit("boom")
            await rt.wait(echo.id)
            await rt.wait(boom.id)
            await rt.submit("echo", None, delay=3600)  # stays pending: a queue depth
            await trio.sleep(25)  # two fires of "tick"
            await trio.testing.wait_all_tasks_blocked()
            await metrics.refresh(rt)
            nursery.cancel_scope.cancel()
        found = samples(metrics)
        node = ("node", rt.node)
        assert (
            found[("trellis_tasks_total", (node, ("status", "completed"), ("type", "echo")))] == 1
        )
        assert found[("trellis_tasks_total", (node, ("status", "retrying"), ("type", "boom")))] == 1
        assert found[("trellis_tasks_total", (node, ("status", "dead"), ("type", "boom")))] == 1
        assert found[("trellis_tasks_failed_total", (node, ("type", "boom")))] == 2
        assert found[("trellis_task_duration_seconds_count", (node, ("type", "echo")))] == 1
        assert found[("trellis_queue_depth", (("queue", "default"), ("status", "pending")))] == 1
        assert found[("trellis_scheduler_fires_total", (node, ("schedule", "tick")))] == 2
        assert found[("trellis_workers", (node,))] == 4
        assert found[("trellis_worker_active", (node,))] == 0
        assert found[("trellis_actor_restarts_total", (("actor", "queue"), node))] == 0
        assert ("trellis_mailbox_depth", (("actor", "store"), node)) in found

    async def test_request_metrics(self) -> None:
        """HTTP request counts and durations carry method, route and status."""
        metrics = Metrics()
        metrics.observe_request("POST", "/tasks", 201, 0.004)
        metrics.observe_request("POST", "/tasks", 201, 0.002)
        found = samples(metrics)
        labels = (("method", "POST"), ("route", "/tasks"), ("status", "201"))
        assert found[("trellis_http_requests_total", labels)] == 2
        count = (
            "trellis_http_request_duration_seconds_count",
            (("method", "POST"), ("route", "/tasks")),
        )
        assert found[count] == 2

    def test_process_pool(self) -> None:
        """A process pool in the actor tree shows its size, busy processes and restarts."""
        metrics = Metrics()
        pool = ActorSnapshot(
            name="processes",
            kind="processes",
            state="running",
            restarts=0,
            last_error=None,
            last_error_at=None,
            mailbox=None,
            uptime=1.0,
            details={"processes": 4, "busy": 3, "waiting": 0, "restarts": 2, "cancelled": 1},
        )
        metrics._actors.snapshot = pool
        found = samples(metrics)
        labels = (("actor", "processes"),)
        assert found[("trellis_process_pool_size", labels)] == 4
        assert found[("trellis_process_pool_busy", labels)] == 3
        assert found[("trellis_process_pool_restarts_total", labels)] == 2
