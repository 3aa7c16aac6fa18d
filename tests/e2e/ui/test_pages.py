"""Every page opens from the navigation bar, looks right at laptop and phone widths, and
stays live without reloads."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot, unique

PAGES = [
    ("Overview", "/ui/", "Overview", "overview"),
    ("Tasks", "/ui/tasks", "Tasks", "tasks"),
    ("Dead letter", "/ui/dead", "Dead letter", "dead"),
    ("Schedules", "/ui/schedules", "Schedules", "schedules"),
    ("Nodes", "/ui/nodes", "Nodes", "nodes"),
    ("Actors", "/ui/actors", "Actors", "actors"),
]


class TestNavigation:
    def test_every_page_opens_from_the_bar(self, page: Page, server: Server) -> None:
        """Each link leads to its page, marked current; / leads to the overview."""
        server.submit("echo", {"hello": "world"})
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/ui/$"))
        for link, path, heading, name in PAGES:
            page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
            expect(page).to_have_url(re.compile(re.escape(path) + "$"))
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            expect(page.get_by_role("link", name=link)).to_have_attribute("aria-current", "page")
            screenshot(page, name)

    def test_pages_fit_a_phone(self, page: Page) -> None:
        """At 390 px nothing overflows sideways: wide tables scroll inside their card."""
        page.set_viewport_size({"width": 390, "height": 844})
        for _, path, heading, name in PAGES:
            page.goto(path)
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
            if name in ("overview", "tasks"):
                screenshot(page, f"{name}-phone")


class TestOverview:
    def test_counts_and_throughput_move_without_reload(self, page: Page, server: Server) -> None:
        """Tasks submitted over HTTP show up in the queue table and the chart by polling."""
        queue = unique("ov")
        page.goto("/ui/")
        page.evaluate("window.__still_here = true")
        before = int(page.get_by_test_id("completed").inner_text())
        for n in range(3):
            server.submit("echo", {"n": n}, queue=queue)
        server.submit("always_fails", None, queue=queue)
        row = page.locator(f'#queues tr[data-queue="{queue}"]')
        expect(row.locator('[data-status="completed"]')).to_have_text("3")
        expect(row.locator('[data-status="dead"]')).to_have_text("1")
        expect(page.get_by_test_id("completed")).not_to_have_text(str(before))
        expect(page.locator("#health")).to_contain_text("ready")
        expect(page.locator("#failures")).to_contain_text("always_fails")
        expect(page.locator("#throughput svg rect.done").first).to_be_visible()
        assert page.evaluate("window.__still_here") is True, "the page reloaded"
        screenshot(page, "overview")


class TestActors:
    def test_tree_shows_every_actor_live(self, page: Page) -> None:
        """The supervision tree lists the runtime's actors with their state and mailbox."""
        page.goto("/ui/actors")
        tree = page.locator("#actor-tree")
        for name in ("supervisor", "registry", "store", "queue", "scheduler", "worker-1"):
            expect(tree.locator(f'[data-actor="{name}"]')).to_be_visible()
        store = tree.locator('[data-actor="store"]')
        expect(store.get_by_test_id("state")).to_have_text("running")
        expect(store.get_by_title("Mailbox")).to_have_text(re.compile(r"mailbox \d+/4096"))
        uptime = store.get_by_title("Up for")
        first = uptime.inner_text()
        expect(uptime).not_to_have_text(first)  # refreshed by itself
        screenshot(page, "actors")
