"""Tasks: submit through the form, watch them live, open one, cancel and requeue."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot, unique


class TestSubmitForm:
    def test_submitted_task_appears_and_completes_live(self, page: Page) -> None:
        """The form stores the task; the table shows it running to completion, no reload."""
        queue = unique("form")
        page.goto("/ui/tasks")
        page.evaluate("window.__still_here = true")
        form = page.locator("#submit-form")
        form.get_by_label("Type").select_option("sleep")
        form.get_by_label("Payload").fill(json.dumps({"seconds": 0.5}))
        form.get_by_label("Queue").fill(queue)
        form.get_by_role("button", name="Submit").click()
        notice = form.get_by_role("status")
        expect(notice).to_contain_text("Submitted")
        task_id = notice.get_by_role("link").get_attribute("title")
        assert task_id
        line = page.locator(f'#tasks-table tr[data-task="{task_id}"]')
        expect(line).to_contain_text(queue)
        expect(line.locator(".badge")).to_have_text("completed")
        assert page.evaluate("window.__still_here") is True, "the page reloaded"

    def test_bad_input_is_shown_inline_and_nothing_is_stored(self, page: Page) -> None:
        """JSON, number and runtime validation errors appear under their fields."""
        queue = unique("bad")
        page.goto("/ui/tasks")
        form = page.locator("#submit-form")
        form.get_by_label("Queue").fill(queue)
        form.get_by_label("Payload").fill("{not json")
        form.get_by_role("button", name="Submit").click()
        expect(page.locator("#error-payload")).to_contain_text("payload must be valid JSON")
        expect(page.get_by_label("Payload")).to_have_value("{not json")  # kept for fixing
        page.get_by_label("Payload").fill("{}")
        page.get_by_label("Priority").fill("high")
        page.locator("#submit-form").get_by_role("button", name="Submit").click()
        expect(page.locator("#error-priority")).to_have_text("priority must be a whole number")
        page.get_by_label("Priority").fill("0")
        page.get_by_label("Delay").fill("-5")
        page.locator("#submit-form").get_by_role("button", name="Submit").click()
        expect(page.locator("#error-delay")).to_have_text(
            "delay must be >= 0 seconds and at most 315360000 (ten years)"
        )
        page.get_by_label("Delay").fill("")
        page.locator("#f-type").evaluate("select => select.add(new Option('nope', 'nope'))")
        page.locator("#submit-form").get_by_label("Type").select_option("nope")
        page.locator("#submit-form").get_by_role("button", name="Submit").click()
        expect(page.locator("#error-type")).to_contain_text("unknown task type 'nope'")
        screenshot(page, "tasks-validation")
        page.goto(f"/ui/tasks?queue={queue}")
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match these filters")

    def test_filters_narrow_the_list(self, page: Page, server: Server) -> None:
        queue = unique("filter")
        done = server.submit("echo", {"n": 1}, queue=queue)
        dead = server.submit("always_fails", None, queue=queue)
        page.goto(f"/ui/tasks?queue={queue}&status=dead")
        expect(page.locator(f'tr[data-task="{dead["id"]}"]')).to_be_visible()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-task="{done["id"]}"]')).to_have_count(0)


class TestTaskDetail:
    def test_progress_moves_and_cancel_stops_a_running_task(
        self, page: Page, server: Server
    ) -> None:
        task = server.submit("slow", {"seconds": 20})
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("running")
        progress = page.get_by_test_id("progress")
        expect(progress).to_be_visible()
        first = progress.get_attribute("value")
        expect(progress).not_to_have_attribute("value", first or "")
        screenshot(page, "task-running")
        page.get_by_role("button", name="Cancel task").click()
        expect(page.get_by_role("status")).to_have_text("Cancelled.")
        expect(page.get_by_test_id("status")).to_have_text("cancelled")
        expect(page.get_by_test_id("timeline")).to_contain_text("running → cancelled")
        expect(page.get_by_role("button", name="Cancel task")).to_have_count(0)

    def test_failed_task_shows_its_error_and_can_be_requeued(
        self, page: Page, server: Server
    ) -> None:
        task = server.submit("always_fails", {"why": "testing"})
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("dead")
        expect(page.get_by_test_id("error")).to_contain_text("RuntimeError: always fails")
        expect(page.locator("pre.traceback")).to_contain_text("Traceback")
        timeline = page.get_by_test_id("timeline")
        for move in ("pending → queued", "queued → running", "running → failed", "failed → dead"):
            expect(timeline).to_contain_text(move)
        screenshot(page, "task-dead")
        page.get_by_role("button", name="Requeue").click()
        expect(page.get_by_role("status")).to_contain_text("Requeued")
        expect(timeline).to_contain_text("dead → queued")
        expect(page.get_by_test_id("status")).to_have_text("dead")  # it fails again

    def test_completed_task_shows_result_and_timeline(self, page: Page, server: Server) -> None:
        task = server.submit("echo", {"answer": 42})
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("completed")
        expect(page.get_by_test_id("result")).to_contain_text('"answer": 42')
        expect(page.get_by_test_id("timeline").locator("li")).to_have_count(4)
        screenshot(page, "task")

    def test_unknown_task_is_a_404_page(self, page: Page, js_errors: list[str]) -> None:
        response = page.goto("/ui/tasks/no-such-task")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Task not found")
        js_errors[:] = [e for e in js_errors if "status of 404" not in e]


class TestEscaping:
    def test_script_in_a_payload_is_text_and_never_runs(self, page: Page, server: Server) -> None:
        """User data is escaped everywhere it appears; HTMX swaps do not run it either."""
        script = "<script>window.__pwned = 1</script>"
        task = server.submit("echo", {"note": script}, queue=unique("xss"))
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("completed")  # after live swaps
        expect(page.get_by_test_id("payload")).to_contain_text(script)
        expect(page.get_by_test_id("result")).to_contain_text(script)
        self.assert_not_run(page)
        page.goto("/ui/tasks")
        expect(page.locator(f'tr[data-task="{task["id"]}"]')).to_be_visible()
        self.assert_not_run(page)

    @staticmethod
    def assert_not_run(page: Page) -> None:
        assert page.evaluate("typeof window.__pwned") == "undefined"
        injected = "[...document.scripts].some(s => s.textContent.includes('__pwned'))"
        assert page.evaluate(injected) is False
