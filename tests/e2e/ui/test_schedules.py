"""Schedules: create (with inline errors), run now, pause, resume, delete."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import screenshot, unique


class TestSchedules:
    def test_create_run_pause_resume_delete(self, page: Page) -> None:
        name = unique("hourly")
        page.goto("/ui/schedules")
        form = page.locator("#schedule-form")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Task type").select_option("echo")
        form.get_by_label("Payload").fill('{"from": "schedule"}')
        form.get_by_label("Runs").select_option("cron")
        form.get_by_label("When").fill("not a cron")
        form.get_by_role("button", name="Create schedule").click()
        expect(page.locator("#error-when")).to_contain_text("cron must have five fields")

        page.get_by_label("When").fill("0 * * * *")
        page.get_by_label("Timezone").fill("Mars/Olympus")
        page.locator("#schedule-form").get_by_role("button", name="Create schedule").click()
        expect(page.locator("#error-timezone")).to_have_text("unknown timezone 'Mars/Olympus'")

        page.get_by_label("Timezone").fill("Europe/Paris")
        page.locator("#schedule-form").get_by_role("button", name="Create schedule").click()
        expect(page.locator("#schedule-form").get_by_role("status")).to_have_text(
            f"Created {name}."
        )
        line = page.locator(f'#schedules-table tr[data-schedule="{name}"]')
        expect(line).to_contain_text("cron 0 * * * * (Europe/Paris)")
        expect(line).to_contain_text("active")

        line.get_by_role("button", name="Run now").click()
        expect(page.locator("#schedules-notice")).to_contain_text(f"Fired {name}.")
        screenshot(page, "schedules")
        page.locator("#schedules-notice a.id").click()  # the task the fire made
        expect(page.get_by_test_id("payload")).to_contain_text('"from": "schedule"')
        page.go_back()

        line.get_by_role("button", name="Pause").click()
        expect(line).to_contain_text("paused")
        line.get_by_role("button", name="Resume").click()
        expect(line).to_contain_text("active")
        page.once("dialog", lambda dialog: dialog.accept())
        line.get_by_role("button", name="Delete").click()
        expect(page.locator("#schedules-notice")).to_have_text(f"Deleted {name}.")
        expect(line).to_have_count(0)
