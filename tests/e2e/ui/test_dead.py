"""Dead letter: requeue or purge dead tasks, one by one or in bulk."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot, unique


class TestDeadLetter:
    def test_requeue_one_and_purge_the_rest_in_bulk(self, page: Page, server: Server) -> None:
        queue = unique("dead")
        ids = [server.submit("always_fails", {"n": n}, queue=queue)["id"] for n in range(3)]
        page.goto(f"/ui/tasks?queue={queue}&status=dead")  # the live list: wait for all three
        expect(page.locator("#tasks-table tbody tr")).to_have_count(3)

        page.goto("/ui/dead")
        rows = {task_id: page.locator(f'#dead-table tr[data-task="{task_id}"]') for task_id in ids}
        for line in rows.values():
            expect(line).to_contain_text("RuntimeError: always fails")
        screenshot(page, "dead")

        first, *rest = ids
        rows[first].get_by_role("button", name="Requeue").click()
        expect(page.get_by_role("status")).to_have_text("Requeued 1 task.")
        expect(rows[first]).to_have_count(0)

        for task_id in rest:
            page.get_by_label(f"Select {task_id}").check()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Purge selected").click()
        expect(page.get_by_role("status")).to_have_text("Purged 2 tasks.")
        for task_id in rest:
            expect(rows[task_id]).to_have_count(0)
            response = page.request.get(f"/ui/tasks/{task_id}")
            assert response.status == 404, "a purged task is gone with its history"

        page.goto(f"/ui/tasks/{first}")  # the requeued one ran again (and failed again)
        expect(page.get_by_test_id("timeline")).to_contain_text("dead → queued")

    def test_bulk_without_a_choice_says_so(self, page: Page) -> None:
        page.goto("/ui/dead")
        if page.get_by_role("button", name="Requeue selected").count() == 0:
            return  # no dead tasks at all: nothing to choose from
        page.get_by_role("button", name="Requeue selected").click()
        expect(page.get_by_role("status")).to_have_text("Select at least one task.")
