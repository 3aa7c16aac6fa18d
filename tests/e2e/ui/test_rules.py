"""The UI's forms meet the runtime's input rules: what no store or ``datetime`` can hold is
shown under its field, nothing is stored, and no actor of the server restarts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, unique


def api(server: Server, path: str) -> Any:
    headers = {"Authorization": f"Bearer {server.token}"}
    answer = httpx.get(f"{server.url}{path}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def restarts(server: Server) -> dict[str, int]:
    """Restarts of the server's actors, from ``GET /debug``."""
    found: dict[str, int] = {}
    pending = [api(server, "/debug")]
    while pending:
        actor = pending.pop()
        if actor["restarts"]:
            found[actor["name"]] = actor["restarts"]
        pending.extend(actor["children"])
    return found


class TestScheduleForm:
    @pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
    def test_one_shot_out_of_range(self, page: Page, server: Server, when: str) -> None:
        """A one-shot time beyond what ``datetime`` holds in UTC is refused under "When";
        the scheduler does not crash and ``GET /schedules`` still answers."""
        name = unique("edge")
        page.goto("/ui/schedules")
        form = page.locator("#schedule-form")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Task type").select_option("echo")
        form.get_by_label("Runs").select_option("at")
        form.get_by_label("When").fill(when)
        form.get_by_role("button", name="Create schedule").click()
        expect(page.locator("#error-when")).to_have_text(
            "at must be between 0001-01-02T00:00:00Z and 9999-12-30T00:00:00Z"
        )
        assert name not in {item["name"] for item in api(server, "/schedules")["items"]}
        assert restarts(server) == {}


class TestSubmitForm:
    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [
            ("Delay", "1e12", "delay must be >= 0 seconds and at most 315360000 (ten years)"),
            (
                "Priority",
                str(2**63),
                "priority must be an integer from -2147483647 to 2147483647",
            ),
            (
                "Payload",
                "[" * 5000 + "]" * 5000,
                "payload must be JSON-serialisable: arrays and objects may nest at most 64 "
                "levels deep",
            ),
            (
                "Payload",
                '{"s": "a\\u0000b"}',
                "payload must be JSON-serialisable: strings must not contain NUL (\\u0000) "
                "(at payload['s'])",
            ),
        ],
    )
    def test_refused_under_its_field(
        self, page: Page, server: Server, field: str, value: str, error: str
    ) -> None:
        """Each value is refused under its field and nothing is stored."""
        queue = unique("rules")
        page.goto("/ui/tasks")
        form = page.locator("#submit-form")
        form.get_by_label("Type").select_option("echo")
        form.get_by_label("Queue").fill(queue)
        form.get_by_label(field).fill(value)
        form.get_by_role("button", name="Submit").click()
        expect(page.locator(f"#error-{field.lower()}")).to_have_text(error)
        assert api(server, f"/tasks?queue={queue}")["items"] == []
        assert restarts(server) == {}

    def test_a_payload_breaking_the_contract(self, page: Page, server: Server) -> None:
        """A payload that breaks its type's contract is refused under "Payload", naming
        the field inside it, and nothing is stored."""
        queue = unique("contract")
        page.goto("/ui/tasks")
        form = page.locator("#submit-form")
        form.get_by_label("Type").select_option("sleep")
        form.get_by_label("Queue").fill(queue)
        form.get_by_label("Payload").fill('{"seconds": -1}')
        form.get_by_role("button", name="Submit").click()
        expect(page.locator("#error-payload")).to_have_text(
            "payload.seconds: Input should be greater than or equal to 0"
        )
        assert api(server, f"/tasks?queue={queue}")["items"] == []
        assert restarts(server) == {}

    def test_queue_with_nul(self, page: Page, server: Server) -> None:
        """A queue name with NUL (sent by a script) is refused under "Queue"."""
        page.goto("/ui/tasks")
        form = page.locator("#submit-form")
        form.get_by_label("Type").select_option("echo")
        page.locator("#f-queue").evaluate("input => { input.value = 'a\\u0000b' }")
        form.get_by_role("button", name="Submit").click()
        expect(page.locator("#error-queue")).to_have_text(
            "queue: strings must not contain NUL (\\u0000)"
        )
        assert api(server, "/tasks?limit=1000")["items"] is not None
        assert restarts(server) == {}
