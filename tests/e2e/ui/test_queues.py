"""The queues card: a queue paused from the overview holds its tasks; resumed, they run."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, unique


class TestQueues:
    def test_pause_and_resume_a_queue(self, page: Page, server: Server) -> None:
        queue = unique("q")
        server.submit("echo", {"n": 1}, queue=queue)
        page.goto("/ui/")
        line = page.locator(f'#queues tr[data-queue="{queue}"]')
        expect(line.locator('[data-status="completed"]')).to_have_text("1")
        expect(line).to_contain_text("active")

        line.get_by_role("button", name="Pause").click()
        expect(page.locator("#queues-notice")).to_contain_text(f"Paused {queue}")
        expect(line).to_contain_text("paused")
        server.submit("echo", {"n": 2}, queue=queue)
        expect(line.locator('[data-status="queued"]')).to_have_text("1")  # the card polls
        expect(line.locator('[data-status="completed"]')).to_have_text("1")

        line.get_by_role("button", name="Resume").click()
        expect(page.locator("#queues-notice")).to_contain_text(f"Resumed {queue}")
        expect(line).to_contain_text("active")
        expect(line.locator('[data-status="completed"]')).to_have_text("2")
