"""A workflow's page: its timeline of steps and signal waits, advancing live."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot


class TestWorkflowTimeline:
    def test_timeline_advances_as_a_signal_is_sent(self, page: Page, server: Server) -> None:
        """The page shows the workflow waiting for its signal after its first step; once
        the signal is sent (over the API) it shows, without a reload, the signal received,
        the next step and the workflow completed. A step's page links to its workflow."""
        flow = server.submit("ui_flow", None)
        page.goto(f"/ui/tasks/{flow['id']}")
        timeline = page.get_by_test_id("workflow-timeline")
        first = timeline.locator('li[data-seq="1"]')
        expect(first).to_have_attribute("data-outcome", "completed")
        expect(first).to_contain_text("step echo")
        waiting = timeline.locator('li[data-seq="2"]')
        expect(waiting).to_have_attribute("data-outcome", "pending")
        expect(waiting).to_contain_text("signal approved")
        expect(page.get_by_test_id("status")).to_have_text("waiting")
        expect(timeline.locator("li")).to_have_count(2)
        screenshot(page, "workflow-waiting")

        response = httpx.post(
            f"{server.url}/workflows/{flow['id']}/signals/approved",
            json={"by": "ops"},
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        expect(waiting).to_have_attribute("data-outcome", "received")
        expect(waiting).to_contain_text('"by": "ops"')
        last = timeline.locator('li[data-seq="3"]')
        expect(last).to_have_attribute("data-outcome", "completed")
        expect(page.get_by_test_id("status")).to_have_text("completed")
        screenshot(page, "workflow-completed")

        first.locator("a.id").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("echo")
        link = page.get_by_test_id("workflow-link")
        expect(link).to_contain_text(flow["id"])
        link.locator("a").click()
        expect(page.get_by_test_id("workflow-timeline")).to_be_visible()
