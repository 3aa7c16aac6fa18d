"""The task list's bulk bar and sort over the Quart test client: the count before the
confirm, the act and its answer, the scopes and CSRF, every refused filter a 422 that says
why, and the sort kept from page to page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from quart_trio import QuartTrio
from tests.unit.ui.test_sessions import ADMIN, READER, Browser, app, runtime

from trellis_actors import Runtime
from trellis_actors.lifecycle import TaskStatus

__all__ = ["app", "runtime"]  # the fixtures, shared with test_sessions

HTMX = {"HX-Request": "true"}


async def csrf_of(browser: Browser, path: str = "/ui/tasks") -> str:
    page = await (await browser.open(path)).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def admin(app: QuartTrio) -> Browser:
    browser = Browser(app)
    await browser.login(ADMIN)
    return browser


async def post(browser: Browser, path: str, form: dict[str, str], htmx: bool = True) -> Any:
    form = {"csrf_token": await csrf_of(browser), **form}
    return await browser.open(path, "POST", form=form, headers=HTMX if htmx else {})


async def post_many(browser: Browser, path: str, form: dict[str, Any]) -> Any:
    """A form whose fields may repeat (a list: one field per value), as a browser sends."""
    headers = {**HTMX, "Content-Type": "application/x-www-form-urlencoded"}
    return await browser.open(path, "POST", data=urlencode(form, doseq=True), headers=headers)


async def later(runtime: Runtime, count: int, queue: str) -> list[str]:
    """``count`` tasks that wait an hour before they run: pending, cancellable."""
    tasks = [runtime.new_task("echo", None, queue=queue, delay=3600) for _ in range(count)]
    return [done.task.id for done in await runtime.enqueue(tasks)]


async def text(response: Any) -> str:
    return str(await response.get_data(as_text=True))


class TestCountThenAct:
    async def test_a_dry_run_counts_then_the_confirm_cancels(
        self, app: QuartTrio, runtime: Runtime
    ) -> None:
        """The first post counts every task the filter selects and touches none; the
        confirmed one cancels them, says how many, and tells the list to refresh."""
        ids = await later(runtime, 3, "mail")
        (other,) = await later(runtime, 1, "other")
        browser = await admin(app)
        asked = await post(browser, "/ui/tasks/bulk/cancel", {"queue": "mail"})
        assert asked.status_code == 200
        page = await text(asked)
        assert 'data-testid="bulk-count">3 tasks<' in page
        assert 'name="confirm" value="1"' in page and 'name="queue" value="mail"' in page
        assert {(await runtime.get(i)).status for i in ids} == {TaskStatus.PENDING}
        done = await post(browser, "/ui/tasks/bulk/cancel", {"queue": "mail", "confirm": "1"})
        assert done.status_code == 200
        assert "3 tasks cancelled." in await text(done)
        assert done.headers["HX-Trigger"] == "trellis:changed"
        assert {(await runtime.get(i)).status for i in ids} == {TaskStatus.CANCELLED}
        assert (await runtime.get(other)).status is TaskStatus.PENDING

    async def test_nothing_to_touch_is_said(self, app: QuartTrio, runtime: Runtime) -> None:
        browser = await admin(app)
        asked = await post(browser, "/ui/tasks/bulk/requeue", {"queue": "empty"})
        assert asked.status_code == 200
        assert "No task these filters select can be requeued." in await text(asked)

    async def test_without_htmx_the_whole_page_answers(
        self, app: QuartTrio, runtime: Runtime
    ) -> None:
        await later(runtime, 2, "plain")
        browser = await admin(app)
        done = await post(
            browser, "/ui/tasks/bulk/cancel", {"queue": "plain", "confirm": "1"}, htmx=False
        )
        page = await text(done)
        assert done.status_code == 200 and "<h1>Tasks</h1>" in page
        assert "2 tasks cancelled." in page

    async def test_the_bar_offers_what_the_status_allows(self, app: QuartTrio) -> None:
        """Dead tasks can be requeued or purged, not cancelled; without a filter the bar
        offers nothing."""
        browser = await admin(app)
        dead = await text(await browser.open("/ui/tasks?status=dead"))
        assert "Requeue matching" in dead and "Purge matching" in dead
        assert "Cancel matching" not in dead
        bare = await text(await browser.open("/ui/tasks"))
        assert "matching…" not in bare and "Filter the list to cancel" in bare


class TestRefusals:
    @pytest.mark.parametrize(
        ("action", "form", "said"),
        [
            ("cancel", {}, "a bulk cancel needs a filter"),
            ("cancel", {"status": "completed"}, "touches only"),
            ("requeue", {"status": "queued"}, "touches only dead tasks"),
            ("cancel", {"status": "bogus"}, "bogus"),
            ("cancel", {"queue": "q", "after": "yesterday"}, "created_after must be"),
            ("cancel", {"queue": "q", "before": "2030-02-30T00:00"}, "created_before must be"),
            (
                "cancel",
                {"after": "2030-01-02T00:00", "before": "2030-01-01T00:00"},
                "created_after must be earlier",
            ),
            ("cancel", {"queue": "q", "id": "0190"}, "not by task id"),
            ("purge", {"queue": "q", "key": "k"}, "not by idempotency key"),
            ("requeue", {"schedule": "s"}, "not by schedule"),
            ("cancel", {"queue": "x" * 1000}, "queue"),
        ],
    )
    async def test_a_bad_filter_is_a_422_that_says_why(
        self, app: QuartTrio, runtime: Runtime, action: str, form: dict[str, str], said: str
    ) -> None:
        ids = await later(runtime, 1, "q")
        browser = await admin(app)
        for confirm in ("", "1"):
            refused = await post(browser, f"/ui/tasks/bulk/{action}", {**form, "confirm": confirm})
            assert refused.status_code == 422
            assert said in await text(refused)
        assert (await runtime.get(ids[0])).status is TaskStatus.PENDING

    async def test_a_reader_sees_no_bulk_actions_and_may_not_post(
        self, app: QuartTrio, runtime: Runtime
    ) -> None:
        ids = await later(runtime, 1, "q")
        reader = Browser(app)
        await reader.login(READER)
        page = await text(await reader.open("/ui/tasks?queue=q"))
        assert "matching…" not in page
        for action in ("cancel", "requeue", "purge"):
            refused = await post(reader, f"/ui/tasks/bulk/{action}", {"queue": "q", "confirm": "1"})
            assert refused.status_code == 403
        assert (await runtime.get(ids[0])).status is TaskStatus.PENDING

    async def test_a_post_without_the_csrf_token_is_refused(
        self, app: QuartTrio, runtime: Runtime
    ) -> None:
        ids = await later(runtime, 1, "q")
        browser = await admin(app)
        form = {"queue": "q", "confirm": "1"}
        refused = await browser.open("/ui/tasks/bulk/cancel", "POST", form=form, headers=HTMX)
        assert refused.status_code == 403
        assert (await runtime.get(ids[0])).status is TaskStatus.PENDING


class TestChosenRows:
    async def test_cancel_the_checked_rows(self, app: QuartTrio, runtime: Runtime) -> None:
        """Only the checked tasks; one cancelled meanwhile and an id that names nothing are
        skipped, and said so."""
        first, second, third, fourth = await later(runtime, 4, "picked")
        await runtime.cancel(second)
        browser = await admin(app)
        page = await text(await browser.open("/ui/tasks?queue=picked"))
        assert f'id="pick-{first}"' in page and 'form="tasks-chosen"' in page
        ids = [first, second, third, first, "not-an-id"]
        form = {"csrf_token": await csrf_of(browser), "queue": "picked", "ids": ids}
        done = await post_many(browser, "/ui/tasks/chosen/cancel", form)
        assert done.status_code == 200
        assert "Cancelled 2 tasks. Skipped 2." in await text(done)
        assert done.headers["HX-Trigger"] == "trellis:changed"
        statuses = [(await runtime.get(i)).status for i in (first, third, fourth)]
        assert statuses == [TaskStatus.CANCELLED, TaskStatus.CANCELLED, TaskStatus.PENDING]

    @pytest.mark.parametrize(
        ("ids", "said"),
        [([], "Select at least one task."), ([f"{n}" for n in range(101)], "at most 100")],
    )
    async def test_none_or_too_many_is_a_422(
        self, app: QuartTrio, ids: list[str], said: str
    ) -> None:
        browser = await admin(app)
        form = {"csrf_token": await csrf_of(browser), "ids": ids}
        refused = await post_many(browser, "/ui/tasks/chosen/requeue", form)
        assert refused.status_code == 422 and said in await text(refused)

    async def test_a_reader_may_not(self, app: QuartTrio, runtime: Runtime) -> None:
        (kept,) = await later(runtime, 1, "picked")
        reader = Browser(app)
        await reader.login(READER)
        assert 'form="tasks-chosen"' not in await text(await reader.open("/ui/tasks"))
        form = {"csrf_token": await csrf_of(reader), "ids": kept}
        refused = await reader.open("/ui/tasks/chosen/cancel", "POST", form=form, headers=HTMX)
        assert refused.status_code == 403
        assert (await runtime.get(kept)).status is TaskStatus.PENDING


class TestSort:
    async def test_oldest_first_across_pages(self, app: QuartTrio, runtime: Runtime) -> None:
        """The store pages oldest first; the next page's link keeps the sort."""
        ids = await later(runtime, 30, "sorted")
        browser = await admin(app)
        first = await text(await browser.open("/ui/tasks/table?queue=sorted&sort=oldest"))
        shown = re.findall(r'data-task="([^"]+)"', first)
        assert shown == ids[:25]
        link = re.search(r'href="/ui/tasks\?([^"]+)">Newer →', first)
        assert link, first
        query = link.group(1).replace("&amp;", "&")
        assert "sort=oldest" in query
        rest = await text(await browser.open(f"/ui/tasks/table?{query}"))
        assert re.findall(r'data-task="([^"]+)"', rest) == ids[25:]
        newest = await text(await browser.open("/ui/tasks/table?queue=sorted"))
        assert re.findall(r'data-task="([^"]+)"', newest) == ids[::-1][:25]

    async def test_an_unknown_sort_is_newest_first(self, app: QuartTrio, runtime: Runtime) -> None:
        ids = await later(runtime, 2, "sorted")
        browser = await admin(app)
        page = await text(await browser.open("/ui/tasks/table?queue=sorted&sort=priority"))
        assert re.findall(r'data-task="([^"]+)"', page) == ids[::-1]
