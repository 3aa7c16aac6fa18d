"""The nodes page and the overview's workers card in Chromium: a serving node and a worker
node on one PostgreSQL database, both listed, busy counts moving without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.kit import Server
from tests.e2e.ui.kit import screenshot
from tests.integration.conftest import pg_template, pg_url, postgres_server  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_nodes(pg_url: str) -> Iterator[tuple[Server, Server]]:  # noqa: F811
    api = Server("--store", pg_url, "--workers", "1", "--heartbeat", "0.2")
    worker = Server(
        "--store",
        pg_url,
        "--workers",
        "3",
        "--heartbeat",
        "0.2",
        command=("worker", "--bind", "127.0.0.1:0"),
        ready=r"^probes on (\S+)",
    )
    try:
        yield api, worker
    finally:
        worker.stop()
        api.stop()


def test_the_nodes_page_lists_both_nodes(browser: Any, two_nodes: tuple[Server, Server]) -> None:
    """Both nodes are rows with their state, pid and worker count; the page's own node
    is marked, and the nav bar leads there."""
    api, worker = two_nodes
    context = browser.new_context(base_url=api.url)
    try:
        page = context.new_page()
        page.goto("/ui/")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Nodes").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Nodes")
        rows = page.locator("[data-testid=nodes] tbody tr")
        expect(rows).to_have_count(2)  # polled: the worker's first beat may come later
        for process, workers in ((api, "1"), (worker, "3")):
            row = rows.filter(has_text=str(process.process.pid))
            expect(row).to_have_count(1)
            expect(row.get_by_test_id("state")).to_have_text("up")
            expect(row.locator("td").nth(5)).to_have_text(workers)
        expect(rows.filter(has_text="(this node)")).to_contain_text(str(api.process.pid))
    finally:
        context.close()


def test_the_workers_card_covers_the_cluster(
    browser: Any, two_nodes: tuple[Server, Server]
) -> None:
    """The overview's workers card counts both nodes' workers: with more long tasks than
    workers, all four are busy, though the serving node has one; each node is listed."""
    api, worker = two_nodes
    context = browser.new_context(base_url=api.url)
    try:
        page = context.new_page()
        page.goto("/ui/")
        card = page.locator("#workers")
        expect(card.get_by_test_id("node-count")).to_have_text("2")  # polled every 2 s
        expect(card.get_by_test_id("idle")).to_have_text("4")
        for _ in range(8):
            response = httpx.post(
                f"{api.url}/tasks", json={"type": "sleep", "payload": {"seconds": 120}}, timeout=10
            )
            assert response.status_code == 201, response.text
        expect(card.get_by_test_id("busy")).to_have_text("4")
        expect(card.get_by_test_id("idle")).to_have_text("0")
        nodes = card.locator(".node-workers")
        expect(nodes).to_have_count(2)
        expect(nodes.filter(has_text="(this node)").locator("li.busy")).to_have_count(1)
        registry = httpx.get(f"{api.url}/nodes", timeout=10).json()
        (other,) = [n["id"] for n in registry["items"] if n["pid"] == worker.process.pid]
        expect(card.locator(f'.node-workers[data-node="{other}"] li.busy')).to_have_count(3)
        screenshot(page, "overview-cluster-workers")
    finally:
        context.close()
        httpx.post(f"{api.url}/tasks/bulk/cancel", json={"type": "sleep"}, timeout=10)
