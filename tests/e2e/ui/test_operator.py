"""What operators use daily: search, time filters, whole ids, editing a schedule and the
tasks it fired, live updates from the event stream, the API docs offline, the UI's 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Route, expect
from tests.e2e.ui.kit import Server, screenshot, unique


def api(server: Server, method: str, path: str, body: Any = None) -> Any:
    """Call the API with the server's token, as a client would."""
    headers = {"Authorization": f"Bearer {server.token}"}
    response = httpx.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def local(at: datetime) -> str:
    """A ``datetime-local`` input's value (the UI reads it as UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class TestSearch:
    def test_by_id_prefix(self, page: Page, server: Server) -> None:
        """The start of an id finds its task; the list shows whole ids, each copyable."""
        queue = unique("prefix")
        first = server.submit("echo", None, queue=queue)
        second = server.submit("echo", None, queue=queue)
        page.goto(f"/ui/tasks?queue={queue}")
        expect(page.locator("#tasks-table tbody tr")).to_have_count(2)
        row = page.locator(f'tr[data-task="{first["id"]}"]')
        expect(row.locator("a.id")).to_have_text(first["id"])  # the whole id
        expect(row.get_by_role("button", name=f"Copy {first['id']}")).to_be_visible()
        page.get_by_label("Task id").fill(first["id"][:-3].upper())  # case does not matter
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(1)
        expect(row).to_be_visible()
        expect(page.locator(f'tr[data-task="{second["id"]}"]')).to_have_count(0)
        screenshot(page, "tasks-search")

    def test_by_idempotency_key(self, page: Page, server: Server) -> None:
        key = unique("order")
        keyed = server.submit("echo", None, idempotency_key=key)
        server.submit("echo", None, idempotency_key=unique("order"))
        page.goto("/ui/tasks")
        page.get_by_label("Idempotency key").fill(key)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-task="{keyed["id"]}"]')).to_be_visible()
        page.get_by_label("Idempotency key").fill("no-such-key")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match these filters")

    def test_bad_prefix_is_said(self, page: Page) -> None:
        page.goto("/ui/tasks?id=xyz")
        expect(page.locator("#tasks-table .notice.error")).to_contain_text("id_prefix")


class TestTimeFilter:
    def test_created_after_and_before(self, page: Page, server: Server) -> None:
        queue = unique("time")
        task = server.submit("echo", None, queue=queue)
        now = datetime.now(UTC)
        page.goto(f"/ui/tasks?queue={queue}")
        page.get_by_label("Created after").fill(local(now - timedelta(hours=1)))
        page.get_by_label("Created before").fill(local(now + timedelta(hours=1)))
        page.get_by_role("button", name="Search").click()
        expect(page.locator(f'tr[data-task="{task["id"]}"]')).to_be_visible()
        page.get_by_label("Created after").fill(local(now + timedelta(minutes=30)))
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match these filters")
        page.get_by_label("Created after").fill("")
        page.get_by_label("Created before").fill(local(now - timedelta(minutes=30)))
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match these filters")


class TestSchedulePage:
    def test_edit_a_schedule(self, page: Page, server: Server) -> None:
        name = unique("nightly")
        schedule = api(
            server, "POST", "/schedules", {"name": name, "task_type": "echo", "every": "1h"}
        )
        page.goto("/ui/schedules")
        page.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        form = page.locator("#schedule-edit")
        expect(form.get_by_label("When")).to_have_value("3600s")
        renamed = unique("hourly")
        form.get_by_label("Name").fill(renamed)
        form.get_by_label("Runs").select_option("cron")
        form.get_by_label("When").fill("*/5 * * * *")
        form.get_by_label("Timezone").fill("Europe/Paris")
        form.get_by_label("Payload").fill('{"edited": true}')
        form.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text(f"Saved {renamed}.")
        expect(page.get_by_test_id("schedule-facts")).to_contain_text("*/5 * * * *")
        saved = api(server, "GET", f"/schedules/{schedule['id']}")
        assert (saved["name"], saved["cron"], saved["timezone"], saved["every"]) == (
            renamed,
            "*/5 * * * *",
            "Europe/Paris",
            None,
        )
        assert saved["payload"] == {"edited": True}
        screenshot(page, "schedule")

    def test_bad_edit_is_shown_and_changes_nothing(self, page: Page, server: Server) -> None:
        name = unique("weekly")
        schedule = api(
            server, "POST", "/schedules", {"name": name, "task_type": "echo", "every": "1h"}
        )
        page.goto(f"/ui/schedules/{schedule['id']}")
        form = page.locator("#schedule-edit")
        form.get_by_label("When").fill("soon")
        form.get_by_role("button", name="Save changes").click()
        expect(page.locator("#error-when")).to_be_visible()
        assert api(server, "GET", f"/schedules/{schedule['id']}")["every"] == 3600

    def test_tasks_it_fired(self, page: Page, server: Server) -> None:
        name = unique("fired")
        schedule = api(
            server, "POST", "/schedules", {"name": name, "task_type": "echo", "every": "1h"}
        )
        other = server.submit("echo", None)
        page.goto(f"/ui/schedules/{schedule['id']}")
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match these filters")
        page.evaluate("window.__still_here = true")
        fired = api(server, "POST", f"/schedules/{schedule['id']}/run")
        row = page.locator(f'#tasks-table tr[data-task="{fired["id"]}"]')
        expect(row).to_be_visible()  # live: the stream said a task moved
        expect(page.locator("#tasks-table tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-task="{other["id"]}"]')).to_have_count(0)
        assert page.evaluate("window.__still_here") is True, "the page reloaded"
        row.locator("a.id").click()
        expect(page.get_by_role("link", name=schedule["id"])).to_be_visible()


class TestLive:
    def test_task_status_moves_without_reload_or_polling(self, page: Page, server: Server) -> None:
        """A pending task's page polls only every 30 s: the change within the expectation's
        10 s comes from the event stream."""
        task = server.submit("echo", None, delay=3600)
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("pending")
        page.evaluate("window.__still_here = true")
        api(server, "DELETE", f"/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("cancelled")
        expect(page.get_by_test_id("timeline")).to_contain_text("pending → cancelled")
        assert page.evaluate("window.__still_here") is True, "the page reloaded"

    def test_tasks_list_shows_new_tasks_live(self, page: Page, server: Server) -> None:
        queue = unique("live")
        page.goto(f"/ui/tasks?queue={queue}")
        expect(page.locator("#tasks-table")).to_contain_text("No tasks match")
        task = server.submit("echo", None, queue=queue, delay=3600)
        expect(page.locator(f'tr[data-task="{task["id"]}"]')).to_be_visible()


class TestDocs:
    @staticmethod
    def offline(page: Page, server: Server) -> list[str]:
        """Abort every request not to the server; returns the aborted URLs."""
        blocked: list[str] = []

        def only_local(route: Route) -> None:
            if route.request.url.startswith(server.url):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        return blocked

    def test_docs_render_offline_for_a_logged_in_browser(self, page: Page, server: Server) -> None:
        """Swagger UI comes from this server, and reads the API document through the UI's
        session: this server has a token, and the page holds none."""
        blocked = self.offline(page, server)
        page.goto("/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Trellis API")
        operations = page.locator(".opblock-summary-path")
        expect(operations.filter(has_text="/tasks").first).to_be_visible()
        assert operations.count() > 10
        assert server.token not in page.content()
        assert blocked == []
        screenshot(page, "docs", full_page=False)

    def test_docs_without_a_session_say_how_to_log_in(
        self, browser: Browser, server: Server
    ) -> None:
        context = browser.new_context(base_url=server.url)
        try:
            tab = context.new_page()
            self.offline(tab, server)
            tab.goto("/docs")
            expect(tab.locator(".docs-refused")).to_contain_text("Log in to the web UI")
        finally:
            context.close()


class TestNotFound:
    def test_unknown_ui_page_is_the_ui_404(self, page: Page, js_errors: list[str]) -> None:
        response = page.goto("/ui/no/such/page")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        js_errors[:] = [e for e in js_errors if "status of 404" not in e]


class TestTypeCharts:
    def test_per_type_counts_from_the_store(self, page: Page, server: Server) -> None:
        """The tasks page charts each type's completed and dead tasks, hour and day."""
        task = server.submit("always_fails", None)
        page.goto(f"/ui/tasks/{task['id']}")
        expect(page.get_by_test_id("status")).to_have_text("dead")
        page.goto("/ui/tasks")
        figure = page.locator('#type-charts figure[data-type="always_fails"]')
        failed = figure.get_by_test_id("failed")
        expect(failed).not_to_have_text("0")
        expect(figure.locator("svg rect.fail").first).to_be_attached()
        page.get_by_role("link", name="Last day").click()
        expect(page.locator("#type-charts h2")).to_contain_text("last day")
        expect(figure.get_by_test_id("p95")).not_to_have_text("—")
        screenshot(page, "type-charts")
