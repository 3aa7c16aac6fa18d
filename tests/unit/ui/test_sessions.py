"""UI login sessions over the Quart test client: new ids, logout, expiry, rate limit, scopes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio
from tests.unit.http.kit import Probe, make_app

from trellis_actors import Runtime, open_runtime
from trellis_actors.access.tokens import Grant, Scope, Token, Tokens, digest
from trellis_actors.http import Auth, create_app
from trellis_actors.runtime.session_messages import GetSession
from trellis_actors.ui import SessionPolicy
from trellis_actors.ui._sessions import key_of

ADMIN = "admin-token-0123456789"
READER = "reader-token-0123456789"
TOKENS = Tokens(
    (
        Token(digest(ADMIN), Grant("boss", frozenset({Scope.ADMIN}))),
        Token(digest(READER), Grant("viewer", frozenset({Scope.READ}))),
    )
)
POLICY = SessionPolicy(idle=600, absolute=2400)
COOKIE = "trellis_ui_session"
CSRF = "trellis_ui_csrf"


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with open_runtime(make_app(Probe()), store="memory://", workers=1) as rt:
        yield rt


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[QuartTrio]:
    app = create_app(runtime, auth=Auth(tokens=TOKENS), sessions=POLICY)
    async with app.test_app():
        yield app


def cookies_of(response: Any) -> dict[str, str]:
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


class Browser:
    """A cookie-less client that sends the cookies it is told to: replays are explicit."""

    def __init__(self, app: QuartTrio) -> None:
        self.client = app.test_client(use_cookies=False)
        self.cookies: dict[str, str] = {}
        self.last: Any = None

    async def open(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.client.open(path, method=method, headers=headers, **kwargs)
        for name, value in cookies_of(response).items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        self.last = response
        return response

    async def csrf(self) -> str:
        page = await (await self.open("/ui/login")).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    async def login(self, token: str, **kwargs: Any) -> Any:
        form = {"token": token, "csrf_token": await self.csrf(), "next": "/ui/tasks"}
        return await self.open("/ui/login", "POST", form=form, **kwargs)

    async def post(self, path: str) -> Any:
        page = await (await self.open("/ui/tasks")).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        form = {"csrf_token": token.group(1) if token else ""}
        return await self.open(path, "POST", form=form)


def to_login(response: Any) -> bool:
    return response.status_code == 303 and response.headers["Location"].startswith("/ui/login")


class TestLogin:
    async def test_two_logins_get_different_sessions(self, app: QuartTrio) -> None:
        """A random id per login, not a fixed value derived from the token."""
        first, second = Browser(app), Browser(app)
        assert (await first.login(ADMIN)).status_code == 303
        assert (await second.login(ADMIN)).status_code == 303
        assert first.cookies[COOKIE] != second.cookies[COOKIE]
        assert len(first.cookies[COOKIE]) >= 43
        assert (await first.open("/ui/tasks")).status_code == 200

    async def test_only_a_hash_is_stored(self, app: QuartTrio, runtime: Runtime) -> None:
        browser = Browser(app)
        await browser.login(READER)
        session_id = browser.cookies[COOKIE]
        stored = await runtime.session(GetSession(key_of(session_id)))
        assert stored is not None and stored.token_name == "viewer"
        assert stored.scopes == ("read",)
        assert await runtime.session(GetSession(session_id)) is None

    async def test_logout_ends_the_session_for_a_replayed_cookie(self, app: QuartTrio) -> None:
        """The old cookie, sent again after the logout, goes to the login form."""
        browser = Browser(app)
        await browser.login(ADMIN)
        old = browser.cookies[COOKIE]
        response = await browser.post("/ui/logout")
        assert to_login(response) and COOKIE not in browser.cookies
        replay = Browser(app)
        replay.cookies = {COOKIE: old}
        assert to_login(await replay.open("/ui/tasks"))
        fragment = await replay.open("/ui/tasks/table", headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and "HX-Redirect" in fragment.headers

    async def test_cookie_flags(self, app: QuartTrio) -> None:
        """HttpOnly, SameSite=Strict, the UI's path; Secure only over https."""
        browser = Browser(app)
        await browser.login(ADMIN)
        header = next(h for h in browser.last.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
        assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/ui" in header
        assert "Secure" not in header
        assert f"Max-Age={int(POLICY.absolute)}" in header
        secure = Browser(app)
        await secure.login(ADMIN, scheme="https")
        header = next(h for h in secure.last.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
        assert "Secure" in header

    async def test_wrong_token(self, app: QuartTrio) -> None:
        browser = Browser(app)
        response = await browser.login("nope-nope-nope-nope")
        assert response.status_code == 401 and COOKIE not in browser.cookies


class TestExpiry:
    async def test_idle(self, app: QuartTrio, autojump_clock: trio.testing.MockClock) -> None:
        """Used within the idle time it lives on; left idle longer it ends."""
        browser = Browser(app)
        await browser.login(ADMIN)
        for _ in range(3):
            await trio.sleep(POLICY.idle - 120)
            assert (await browser.open("/ui/tasks")).status_code == 200
        await trio.sleep(POLICY.idle)
        assert to_login(await browser.open("/ui/tasks"))

    async def test_absolute(self, app: QuartTrio, autojump_clock: trio.testing.MockClock) -> None:
        """However busy, a session ends ``absolute`` seconds after its login."""
        browser = Browser(app)
        await browser.login(ADMIN)
        for _ in range(int(POLICY.absolute // (POLICY.idle / 2)) - 1):
            await trio.sleep(POLICY.idle / 2)
            assert (await browser.open("/ui/tasks")).status_code == 200
        await trio.sleep(POLICY.idle / 2)
        assert to_login(await browser.open("/ui/tasks"))


class TestRateLimit:
    async def test_five_failures_then_429(
        self, app: QuartTrio, autojump_clock: trio.testing.MockClock
    ) -> None:
        """After five wrong tokens a minute even the right one waits, with Retry-After."""
        browser = Browser(app)
        for _ in range(5):
            assert (await browser.login("wrong-wrong-wrong-wrong")).status_code == 401
        refused = await browser.login(ADMIN)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert COOKIE not in browser.cookies
        await trio.sleep(61)
        assert (await browser.login(ADMIN)).status_code == 303


class TestScopes:
    async def test_read_only_can_browse_but_not_act(self, app: QuartTrio, runtime: Runtime) -> None:
        """A read token's session sees the pages; cancel, requeue, submit are 403."""
        task = await runtime.submit("block", None, delay=3600)
        browser = Browser(app)
        await browser.login(READER)
        assert (await browser.open("/ui/tasks")).status_code == 200
        assert "submit-form" not in await browser.last.get_data(as_text=True)
        page = await browser.open(f"/ui/tasks/{task.id}")
        assert page.status_code == 200
        assert "Cancel task" not in await page.get_data(as_text=True)  # not offered
        for path in (f"/ui/tasks/{task.id}/cancel", "/ui/tasks", "/ui/dead/purge"):
            response = await browser.post(path)
            assert response.status_code == 403, path
            assert "scope" in await response.get_data(as_text=True)
        assert (await runtime.get(task.id)).status.value != "cancelled"

    async def test_admin_can_act(self, app: QuartTrio, runtime: Runtime) -> None:
        task = await runtime.submit("block", None)
        browser = Browser(app)
        await browser.login(ADMIN)
        assert "Cancel task" in await (await browser.open(f"/ui/tasks/{task.id}")).get_data(
            as_text=True
        )
        response = await browser.post(f"/ui/tasks/{task.id}/cancel")
        assert response.status_code in (200, 303)
        assert (await runtime.get(task.id)).status.value == "cancelled"
