"""The guard: unknown Host names, other origins' state-changing requests and bodies that
are not JSON are refused before anything is done; allowed origins get CORS answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from trellis_actors import App, Runtime, open_runtime
from trellis_actors.http import create_app
from trellis_actors.http.guard import Guard
from trellis_actors.http.server import ServerConfig

TASK = {"type": "echo", "payload": {"x": 1}}


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with open_runtime(App(), workers=0) as rt:
        yield rt


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Any]:
    guard = Guard.of(
        "api.internal:8080",
        hosts=("trellis.example.com", ".corp.example"),
        origins=("https://app.example.com",),
    )
    app = create_app(runtime, guard=guard)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def stored(runtime: Runtime) -> int:
    return len((await runtime.list()).items)


class TestHost:
    @pytest.mark.parametrize(
        "host",
        [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
            "api.internal:8080",
            "trellis.example.com",
            "TRELLIS.example.com.",
            "corp.example",
            "a.b.corp.example:443",
        ],
    )
    async def test_served(self, api: Any, host: str) -> None:
        response = await api.get("/health", headers={"Host": host})
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "host", ["attacker.example", "localhost.attacker.example", "evilcorp.example", "x y"]
    )
    async def test_refused_with_421(self, api: Any, runtime: Runtime, host: str) -> None:
        response = await api.post("/tasks", json=TASK, headers={"Host": host})
        error = (await response.get_json())["error"]
        assert response.status_code == 421
        assert (error["code"], error["field"]) == ("misdirected_request", "Host")
        assert "--allowed-host" in error["message"]
        assert await stored(runtime) == 0

    async def test_a_wildcard_serves_any_name(self, runtime: Runtime) -> None:
        app = create_app(runtime, guard=Guard.of(hosts=("*",)))
        async with app.test_app() as test_app:
            response = await test_app.test_client().get(
                "/health", headers={"Host": "anything.example"}
            )
        assert response.status_code == 200


class TestOrigin:
    async def test_another_origin_cannot_submit(self, api: Any, runtime: Runtime) -> None:
        response = await api.post(
            "/tasks", json=TASK, headers={"Origin": "https://attacker.example"}
        )
        error = (await response.get_json())["error"]
        assert response.status_code == 403
        assert (error["code"], error["field"]) == ("cross_origin", "Origin")
        assert await stored(runtime) == 0

    @pytest.mark.parametrize("origin", ["null", "http://localhost:9999", "file://"])
    async def test_other_and_opaque_origins_cannot_cancel(self, api: Any, origin: str) -> None:
        response = await api.post(
            "/tasks/01900000-0000-7000-8000-000000000000/cancel",
            headers={"Origin": origin, "Host": "localhost:8080"},
        )
        assert response.status_code == 403

    async def test_its_own_origin_and_no_origin_may(self, api: Any, runtime: Runtime) -> None:
        own = await api.post(
            "/tasks",
            json=TASK,
            headers={"Origin": "http://localhost:8080", "Host": "localhost:8080"},
        )
        script = await api.post("/tasks", json=TASK)  # curl, a server: no Origin
        assert (own.status_code, script.status_code) == (201, 201)
        assert await stored(runtime) == 2

    async def test_reading_from_another_origin_gets_no_cors_headers(self, api: Any) -> None:
        response = await api.get("/tasks", headers={"Origin": "https://attacker.example"})
        assert response.status_code == 200  # the browser keeps the body from the page
        assert "Access-Control-Allow-Origin" not in response.headers

    async def test_an_allowed_origin_may_and_gets_cors(self, api: Any, runtime: Runtime) -> None:
        origin = "https://app.example.com"
        preflight = await api.options(
            "/tasks",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )
        response = await api.post("/tasks", json=TASK, headers={"Origin": origin})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        assert response.status_code == 201
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response.headers["Vary"]

    def test_a_bad_origin_setting_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not an origin"):
            Guard.of(origins=("app.example.com",))


class TestContentType:
    @pytest.mark.parametrize(
        "kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
    )
    async def test_a_body_that_is_not_json_is_refused_with_415(
        self, api: Any, runtime: Runtime, kind: str
    ) -> None:
        headers = {"Content-Type": kind} if kind else {"Content-Length": "31"}
        response = await api.post("/tasks", data=b'{"type": "echo", "payload": 1}', headers=headers)
        error = (await response.get_json())["error"]
        assert response.status_code == 415
        assert (error["code"], error["field"]) == ("unsupported_media_type", "Content-Type")
        assert await stored(runtime) == 0

    async def test_json_with_a_charset_is_json(self, api: Any) -> None:
        response = await api.post(
            "/tasks",
            data=b'{"type": "echo", "payload": 1}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert response.status_code == 201

    async def test_no_body_needs_no_type(self, api: Any) -> None:
        response = await api.post("/tasks/01900000-0000-7000-8000-000000000000/cancel")
        assert response.status_code == 404


class TestAnswers:
    async def test_security_headers_and_a_request_id(self, api: Any) -> None:
        response = await api.get("/tasks")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert len(response.headers["X-Request-ID"]) == 16

    async def test_an_error_names_the_request(self, api: Any) -> None:
        response = await api.get("/tasks/not-an-id", headers={"X-Request-ID": "trace-42"})
        body = await response.get_json()
        assert response.status_code == 404
        assert body["error"]["request_id"] == "trace-42"
        assert response.headers["X-Request-ID"] == "trace-42"

    async def test_a_hostile_request_id_is_replaced(self, api: Any) -> None:
        response = await api.get("/health", headers={"X-Request-ID": "a\u00e9" + "x" * 100})
        assert response.headers["X-Request-ID"] != "a\u00e9" + "x" * 100


class TestPublicBind:
    @pytest.mark.parametrize("bind", ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:80", "host:80"])
    def test_a_public_bind_without_a_token_is_refused(self, bind: str) -> None:
        with pytest.raises(ValueError, match="without an API token"):
            ServerConfig(bind=bind)

    @pytest.mark.parametrize("bind", ["127.0.0.1:0", "[::1]:8080", "localhost:80"])
    def test_loopback_needs_no_token(self, bind: str) -> None:
        ServerConfig(bind=bind)

    def test_a_token_or_the_insecure_switch_allows_it(self) -> None:
        ServerConfig(bind="0.0.0.0:8080", token="s3cret")
        ServerConfig(bind="0.0.0.0:8080", insecure_no_auth=True)
