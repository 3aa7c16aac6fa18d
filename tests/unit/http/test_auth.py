"""Bearer-token auth: required everywhere but /health and /readyz when a token is set."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from tests.unit.http.kit import TOKEN

from trellis_actors.access.tokens import Scope
from trellis_actors.http import Auth
from trellis_actors.http.auth import METRICS, Refused, needs

BEARER = {"Authorization": f"Bearer {TOKEN}"}


class TestAuth:
    def test_open_without_token(self) -> None:
        """No token: every route is open, whatever it declares."""
        auth = Auth()
        assert not auth.enabled
        assert auth.check(Scope.ADMIN, None).allows(Scope.ADMIN)

    def test_metrics_scope(self) -> None:
        """/metrics needs read, or nothing with metrics_public."""
        view = needs(METRICS)(lambda: None)
        assert Auth("t").scope_of(view) is Scope.READ
        assert Auth("t", metrics_public=True).scope_of(view) is Scope.PUBLIC

    async def test_bearer(self) -> None:
        """Only an exact token, as a Bearer credential, is recognised."""
        auth = Auth("t0k")
        app = Quart(__name__)
        for header, allowed in (
            ("Bearer t0k", True),
            ("bearer t0k", True),
            ("Bearer t0k2", False),
            ("Basic t0k", False),
            ("t0k", False),
            ("Bearer ", False),
            ("", False),
        ):
            async with app.test_request_context("/tasks", headers={"Authorization": header}):
                from quart import request

                assert auth.allows(request) is allowed, header

    def test_empty_token_refused(self) -> None:
        """An empty token is a configuration mistake."""
        with pytest.raises(ValueError, match="must not be empty"):
            Auth(" ")

    def test_undeclared_route_refused(self) -> None:
        """A route that declares no scope is refused even to an admin."""
        auth = Auth("t")
        with pytest.raises(Refused, match="declares no scope"):
            auth.check(None, auth.tokens.match("t"))


class TestSecuredApp:
    @pytest.mark.parametrize("path", ["/tasks", "/queues", "/metrics", "/openapi.json", "/nope"])
    async def test_refused_without_token(self, secured: Any, path: str) -> None:
        """Without the token: 401 with WWW-Authenticate: Bearer and the error shape."""
        response = await secured.get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.get_json())["error"]["code"] == "unauthorized"

    async def test_wrong_token(self, secured: Any) -> None:
        """A wrong token is refused."""
        response = await secured.get("/tasks", headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401

    async def test_with_token(self, secured: Any) -> None:
        """With the token the API answers."""
        response = await secured.post("/tasks", json={"type": "echo"}, headers=BEARER)
        assert response.status_code == 201
        assert (await secured.get("/metrics", headers=BEARER)).status_code == 200

    async def test_probes_open(self, secured: Any) -> None:
        """/health and /readyz answer without the token."""
        assert (await secured.get("/health")).status_code == 200
        assert (await secured.get("/readyz")).status_code == 200

    async def test_documented(self, secured: Any) -> None:
        """The OpenAPI document names the bearer scheme, and the open probes."""
        spec = await (await secured.get("/openapi.json", headers=BEARER)).get_json()
        assert spec["security"] == [{"bearer": []}]
        assert spec["paths"]["/health"]["get"]["security"] == []
        assert spec["paths"]["/tasks"]["post"]["security"] == [{"bearer": ["submit"]}]
        assert spec["paths"]["/tasks/{task_id}"]["delete"]["security"] == [{"bearer": ["operate"]}]
        assert spec["paths"]["/tasks"]["get"]["x-trellis-scope"] == "read"
