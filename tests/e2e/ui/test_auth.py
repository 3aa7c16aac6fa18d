"""Login with the token, logout, and CSRF protection of every POST."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from tests.e2e.ui.kit import Server, screenshot, unique


class TestLogin:
    def test_pages_need_the_token_once(self, browser: Any, server: Server) -> None:
        context = browser.new_context(base_url=server.url)
        try:
            page = context.new_page()
            page.goto("/ui/tasks?status=dead")
            expect(page).to_have_url(re.compile(r"/ui/login\?next="))
            screenshot(page, "login")
            page.get_by_label("Token").fill("wrong")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_have_text("That token is not right.")

            page.get_by_label("Token").fill(server.token)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(re.compile(r"/ui/tasks\?status=dead$"))  # back where it was
            session = next(c for c in context.cookies() if c["name"] == "trellis_ui_session")
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            assert server.token not in session["value"], "the cookie must not hold the token"
            # The page's charts load after it does; a fragment still asked for once the
            # session has ended is sent to the login page with ``next=`` (this page).
            expect(page.locator("section#type-charts")).to_be_attached()

            page.get_by_role("button", name="Log out").click()
            expect(page).to_have_url(re.compile(r"/ui/login$"))
            page.goto("/ui/")
            expect(page).to_have_url(re.compile(r"/ui/login"))
        finally:
            context.close()

    def test_logout_ends_the_session_for_a_replayed_cookie(
        self, browser: Any, server: Server
    ) -> None:
        """Each login gets its own session; after logout its cookie, replayed, is useless."""
        contexts = [browser.new_context(base_url=server.url) for _ in range(3)]
        try:
            cookies = []
            for context in contexts[:2]:
                page = context.new_page()
                page.goto("/ui/login")
                page.get_by_label("Token").fill(server.token)
                page.get_by_role("button", name="Log in").click()
                expect(page).to_have_url(re.compile(r"/ui/$"))
                cookies.append(
                    next(c for c in context.cookies() if c["name"] == "trellis_ui_session")
                )
            assert cookies[0]["value"] != cookies[1]["value"]
            page.get_by_role("button", name="Log out").click()
            # (A poll of this page answered after the logout may add ``next=``.)
            expect(page).to_have_url(re.compile(r"/ui/login($|\?next=)"))
            replay = contexts[2]
            replay.add_cookies([cookies[1]])
            again = replay.new_page()
            again.goto("/ui/tasks")
            expect(again).to_have_url(re.compile(r"/ui/login\?next="))
            other = contexts[0].new_page()  # the other login lives on
            other.goto("/ui/tasks")
            expect(other).to_have_url(re.compile(r"/ui/tasks$"))
        finally:
            for context in contexts:
                context.close()

    def test_a_live_page_goes_to_login_when_the_session_ends(
        self, browser: Any, server: Server, logged_in: dict[str, Any]
    ) -> None:
        """Polling fragments answer HX-Redirect: the whole page moves to the login form."""
        context = browser.new_context(base_url=server.url, storage_state=logged_in)
        try:
            page = context.new_page()
            page.goto("/ui/actors")
            expect(page.locator("#actor-tree")).to_be_visible()
            context.clear_cookies()
            expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/actors$"))
        finally:
            context.close()

    def test_next_never_leaves_the_site(self, browser: Any, server: Server) -> None:
        context = browser.new_context(base_url=server.url)
        try:
            page = context.new_page()
            page.goto("/ui/login?next=//evil.example/")
            page.get_by_label("Token").fill(server.token)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{server.url}/ui/")
        finally:
            context.close()


class TestCsrf:
    def test_post_without_the_csrf_token_is_refused(self, page: Page) -> None:
        """Logged in, with cookies, but without the page's token: 403, nothing stored."""
        queue = unique("csrf")
        page.goto("/ui/tasks")
        form = {"type": "echo", "payload": "{}", "queue": queue}
        refused = page.request.post("/ui/tasks", form=form, max_redirects=0)
        assert refused.status == 403
        forged = page.request.post(
            "/ui/tasks", form={**form, "csrf_token": "0" * 64}, max_redirects=0
        )
        assert forged.status == 403
        token = page.locator('#submit-form input[name="csrf_token"]').input_value()
        accepted = page.request.post(
            "/ui/tasks", form={**form, "csrf_token": token}, max_redirects=0
        )
        assert accepted.status == 303  # the same request with the token goes through
        page.goto(f"/ui/tasks?queue={queue}")
        expect(page.locator("#tasks-table tbody tr")).to_have_count(1)

    def test_mutations_are_not_reachable_by_get(self, page: Page, server: Server) -> None:
        task = server.submit("slow", {"seconds": 5})
        response = page.request.get(f"/ui/tasks/{task['id']}/cancel", max_redirects=0)
        assert response.status == 405
