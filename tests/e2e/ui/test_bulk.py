"""Bulk actions and the sort of the task list, in Chromium against a real server: every
task the filters select (not only the page shown), counted before a confirm."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot, unique

PAGE_SIZE = 25  # the task list's page


def task(server: Server, task_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.token}"}
    response = httpx.get(f"{server.url}/tasks/{task_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def later(server: Server, queue: str, count: int) -> list[str]:
    """``count`` tasks due in an hour: pending until then, so still cancellable."""
    return [server.submit("echo", n, queue=queue, delay=3600)["id"] for n in range(count)]


def ids_shown(page: Page) -> list[str]:
    rows = page.locator("#tasks-table tbody tr")
    return [rows.nth(i).get_attribute("data-task") or "" for i in range(rows.count())]


class TestBulkCancel:
    def test_filter_then_cancel_every_match(self, page: Page, server: Server) -> None:
        """The filter selects more tasks than a page shows: the count and the cancel cover
        them all; another queue's task is untouched; the list refreshes by itself."""
        queue = unique("bulk")
        ids = later(server, queue, PAGE_SIZE + 2)
        (bystander,) = later(server, unique("other"), 1)
        page.goto("/ui/tasks")
        page.get_by_role("search").get_by_label("Queue", exact=True).fill(queue)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(PAGE_SIZE)
        bar = page.locator("#tasks-bulk")
        bar.get_by_role("button", name="Cancel matching…").click()
        expect(bar.get_by_test_id("bulk-count")).to_have_text(f"{len(ids)} tasks")
        screenshot(page, "tasks-bulk-confirm")
        assert {task(server, i)["status"] for i in ids} == {"pending"}  # counted, not touched
        bar.get_by_role("button", name=f"Cancel {len(ids)} tasks").click()
        expect(bar.get_by_role("status")).to_have_text(f"{len(ids)} tasks cancelled.")
        statuses = page.locator("#tasks-table tbody tr .badge")
        expect(statuses.filter(has_text="cancelled")).to_have_count(PAGE_SIZE)
        assert {task(server, i)["status"] for i in ids} == {"cancelled"}
        assert task(server, bystander)["status"] == "pending"
        screenshot(page, "tasks-bulk-done")

    def test_back_leaves_the_tasks_alone(self, page: Page, server: Server) -> None:
        queue = unique("back")
        (kept,) = later(server, queue, 1)
        page.goto(f"/ui/tasks?queue={queue}")
        bar = page.locator("#tasks-bulk")
        bar.get_by_role("button", name="Cancel matching…").click()
        expect(bar.get_by_test_id("bulk-count")).to_have_text("1 task")
        bar.get_by_role("link", name="Back").click()
        expect(bar.get_by_role("button", name="Cancel matching…")).to_be_visible()
        assert task(server, kept)["status"] == "pending"


class TestChosenRows:
    def test_cancel_the_checked_rows(self, page: Page, server: Server) -> None:
        queue = unique("picked")
        first, second, third = later(server, queue, 3)
        page.goto(f"/ui/tasks?queue={queue}")
        page.get_by_label(f"Select {first}").check()
        page.get_by_label(f"Select {third}").check()
        page.locator("#tasks-bulk").get_by_role("button", name="Cancel selected").click()
        expect(page.locator("#tasks-bulk").get_by_role("status")).to_have_text("Cancelled 2 tasks.")
        row = page.locator(f'#tasks-table tr[data-task="{first}"]')
        expect(row.locator(".badge")).to_have_text("cancelled")
        assert [task(server, i)["status"] for i in (first, second, third)] == [
            "cancelled",
            "pending",
            "cancelled",
        ]


class TestBulkRequeue:
    def test_requeue_every_dead_task_of_a_queue(self, page: Page, server: Server) -> None:
        queue = unique("redo")
        ids = [server.submit("always_fails", n, queue=queue)["id"] for n in range(3)]
        page.goto(f"/ui/tasks?queue={queue}&status=dead")  # the live list: wait for all
        expect(page.locator("#tasks-table tbody tr")).to_have_count(3)
        bar = page.locator("#tasks-bulk")
        expect(bar.get_by_role("button", name="Cancel matching…")).to_have_count(0)
        bar.get_by_role("button", name="Requeue matching…").click()
        expect(bar.get_by_test_id("bulk-count")).to_have_text("3 tasks")
        bar.get_by_role("button", name="Requeue 3 tasks").click()
        expect(bar.get_by_role("status")).to_have_text("3 tasks requeued.")
        for task_id in ids:  # each ran again (and failed again)
            page.goto(f"/ui/tasks/{task_id}")
            expect(page.get_by_test_id("timeline")).to_contain_text("dead → queued")


class TestRefusals:
    def test_a_filter_bulk_actions_cannot_use_is_refused(self, page: Page, server: Server) -> None:
        (kept,) = later(server, unique("refused"), 1)
        page.goto(f"/ui/tasks?id={kept[:8]}")
        bar = page.locator("#tasks-bulk")
        bar.get_by_role("button", name="Cancel matching…").click()
        expect(bar.get_by_role("alert")).to_contain_text("not by task id")
        assert task(server, kept)["status"] == "pending"
        page.goto(f"/ui/tasks?queue={unique('refused')}&after=not-a-time")
        bar.get_by_role("button", name="Cancel matching…").click()
        expect(bar.get_by_role("alert")).to_contain_text("created_after must be")
        screenshot(page, "tasks-bulk-refused")

    def test_without_a_filter_only_checked_rows(self, page: Page) -> None:
        """A bulk operation needs a filter: without one, the bar offers the checked rows."""
        page.goto("/ui/tasks")
        bar = page.locator("#tasks-bulk")
        expect(bar).to_contain_text("Filter the list")
        expect(bar.get_by_role("button", name=re.compile("matching"))).to_have_count(0)
        expect(bar.get_by_role("button", name="Cancel selected")).to_be_visible()


class TestSort:
    def test_oldest_first_across_pages(self, page: Page, server: Server) -> None:
        """The server sorts the whole list: page two goes on where page one stopped, in
        the same order, and the sort stays in the URL."""
        queue = unique("sort")
        ids = later(server, queue, PAGE_SIZE + 3)
        page.goto(f"/ui/tasks?queue={queue}")
        assert ids_shown(page) == ids[::-1][:PAGE_SIZE]
        page.get_by_label("Sort").select_option(label="Oldest first")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#tasks-table tbody tr").first).to_have_attribute("data-task", ids[0])
        assert ids_shown(page) == ids[:PAGE_SIZE]
        page.get_by_role("link", name="Newer →").click()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(3)
        assert "sort=oldest" in page.url
        assert ids_shown(page) == ids[PAGE_SIZE:]
        expect(page.get_by_label("Sort")).to_have_value("oldest")
        page.get_by_role("link", name="← Oldest").click()
        expect(page.locator("#tasks-table tbody tr")).to_have_count(PAGE_SIZE)
        assert ids_shown(page) == ids[:PAGE_SIZE]
