"""A node's ``GET /metrics`` as Prometheus reads it: ``promtool check metrics`` passes, and
the rules dashboards rely on hold: names, HELP and TYPE once per family, no ``_created``,
a ``node`` label on every series of the node's own, none on the store-wide gauges."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

import trellis_actors as ta
from trellis_actors.http import ServerConfig, serve

#: Gauges read from the store: the same figures on every node, so without a node label.
STORE_WIDE = {"trellis_queue_depth"}


def make_app() -> ta.App:
    app = ta.App()

    @app.task(max_attempts=1)
    async def fails(ctx: ta.TaskContext, payload: object) -> None:
        raise RuntimeError("no")

    @app.periodic(every="1h")
    async def hourly(ctx: ta.TaskContext, payload: object) -> None:
        return None

    return app


@pytest.fixture
async def exposition() -> AsyncIterator[tuple[ta.Runtime, str]]:
    """The text of a node's /metrics after some work of every kind."""
    async with ta.open_runtime(make_app(), workers=2) as rt, trio.open_nursery() as nursery:
        (url,) = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        await rt.wait((await rt.submit("echo", 1)).id, timeout=10)
        await rt.wait((await rt.submit("fails")).id, timeout=10)
        await rt.submit("echo", None, delay=3600)  # a pending task: a queue depth
        for _ in range(2):  # the second scrape counts the first request
            response = await trio.to_thread.run_sync(
                lambda: httpx.get(f"{url}/metrics", timeout=10)
            )
            assert response.status_code == 200
        yield rt, response.text
        nursery.cancel_scope.cancel()


class TestExposition:
    async def test_promtool_check_metrics(self, exposition: tuple[ta.Runtime, str]) -> None:
        """Prometheus's own linter finds nothing to say (Debian's ``prometheus`` package)."""
        promtool = shutil.which("promtool")
        if promtool is None:
            reason = "promtool is not installed (apt-get install prometheus)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason} (required when CI=true)")
            pytest.skip(reason)
        _, text = exposition
        checked = await trio.run_process(
            [promtool, "check", "metrics"], stdin=text.encode(), capture_stdout=True,
            capture_stderr=True, check=False,
        )  # fmt: skip
        said = (checked.stdout + checked.stderr).decode()
        assert checked.returncode == 0 and said.strip() == "", said

    async def test_help_and_type_once_per_family(self, exposition: tuple[ta.Runtime, str]) -> None:
        """Each family is described (HELP) and typed (TYPE) once."""
        _, text = exposition
        helps = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# HELP"))
        types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE"))
        assert helps == types and set(helps.values()) == {1}
        families = list(text_string_to_metric_families(text))
        assert len(families) == len(helps)
        for family in families:
            assert family.documentation, family.name
            assert family.type in {"counter", "gauge", "histogram", "info"}, family.name

    async def test_names_and_no_created(self, exposition: tuple[ta.Runtime, str]) -> None:
        """Counters are exposed as ``*_total``; no ``*_created`` series; every sample
        once (each gauge exported once)."""
        _, text = exposition
        assert "_created" not in text
        seen: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                seen[(sample.name, tuple(sorted(sample.labels.items())))] += 1
                if family.type == "counter":
                    assert sample.name == family.name + "_total", sample.name
        assert set(seen.values()) == {1}
        names = {name for name, _ in seen}
        assert {"trellis_tasks_total", "trellis_queue_depth", "trellis_workers"} <= names

    async def test_node_label_on_the_nodes_own_series_only(
        self, exposition: tuple[ta.Runtime, str]
    ) -> None:
        """Every trellis_ series of this node's own says which node; the store-wide
        gauges do not (every node exports the same figures: aggregate them with max)."""
        rt, text = exposition
        trellis = [f for f in text_string_to_metric_families(text) if f.name.startswith("trellis_")]
        assert {f.name for f in trellis} >= STORE_WIDE | {
            "trellis_tasks",
            "trellis_tasks_failed",
            "trellis_task_duration_seconds",
            "trellis_http_requests",
            "trellis_actor_restarts",
            "trellis_scheduler_fires",
        }
        for family in trellis:
            for sample in family.samples:
                if family.name in STORE_WIDE:
                    assert "node" not in sample.labels, sample
                else:
                    assert sample.labels.get("node") == rt.node, sample
        labelled = {f.name for f in trellis if f.samples} - STORE_WIDE
        assert len(labelled) >= 10
        depth = {
            (s.labels["queue"], s.labels["status"]): s.value
            for f in trellis
            if f.name == "trellis_queue_depth"
            for s in f.samples
        }
        assert depth[("default", "pending")] == 1 and depth[("default", "dead")] == 1
        assert "max" in next(f for f in trellis if f.name == "trellis_queue_depth").documentation
