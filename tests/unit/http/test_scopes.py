"""Scoped tokens: every route declares a scope, and each is enforced with tokens of each scope."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart_trio import QuartTrio

from trellis_actors import Runtime
from trellis_actors.access.tokens import Grant, Scope, Token, Tokens, digest
from trellis_actors.http import Auth, create_app

#: A token per scope, and a submit token limited to the echo type in the default queue.
SECRETS = {scope: f"{scope.value}-token-0123456789" for scope in Scope if scope is not Scope.PUBLIC}
LIMITED = "limited-token-0123456789"
LIMITED_GRANT = Grant(
    "limited", frozenset({Scope.SUBMIT}), frozenset({"echo"}), frozenset({"default"})
)
TOKENS = Tokens(
    (
        *(Token(digest(secret), Grant(s.value, frozenset({s}))) for s, secret in SECRETS.items()),
        Token(digest(LIMITED), LIMITED_GRANT),
    )
)

#: What each route needs. A new route must be added here, with the scope it declares.
EXPECTED = {
    ("GET", "/health"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "read",
    ("GET", "/openapi.json"): "read",
    ("GET", "/docs"): "public",
    ("GET", "/docs/static/<path:filename>"): "public",
    ("GET", "/"): "public",
    ("POST", "/tasks"): "submit",
    ("GET", "/tasks"): "read",
    ("GET", "/tasks/<task_id>"): "read",
    ("GET", "/tasks/<task_id>/events"): "read",
    ("GET", "/tasks/<task_id>/wait"): "read",
    ("DELETE", "/tasks/<task_id>"): "operate",
    ("POST", "/tasks/<task_id>/requeue"): "operate",
    ("POST", "/tasks/bulk/cancel"): "operate",
    ("POST", "/tasks/bulk/requeue"): "operate",
    ("POST", "/tasks/bulk/purge"): "admin",
    ("GET", "/queues"): "read",
    ("POST", "/queues/<name>/pause"): "operate",
    ("POST", "/queues/<name>/resume"): "operate",
    ("GET", "/workers"): "read",
    ("GET", "/nodes"): "read",
    ("GET", "/task-types"): "read",
    ("GET", "/debug"): "read",
    ("GET", "/events"): "read",
    ("GET", "/schedules"): "read",
    ("POST", "/schedules"): "operate",
    ("GET", "/schedules/<schedule_id>"): "read",
    ("PATCH", "/schedules/<schedule_id>"): "operate",
    ("DELETE", "/schedules/<schedule_id>"): "operate",
    ("POST", "/schedules/<schedule_id>/pause"): "operate",
    ("POST", "/schedules/<schedule_id>/resume"): "operate",
    ("POST", "/schedules/<schedule_id>/run"): "operate",
    ("GET", "/workflows/<workflow_id>"): "read",
    ("POST", "/workflows/<workflow_id>/signals/<name>"): "submit",
    ("GET", "/ui/static/<path:filename>"): "public",
    ("GET", "/ui/login"): "public",
    ("POST", "/ui/login"): "public",
    ("POST", "/ui/logout"): "public",
    ("GET", "/ui/"): "read",
    ("GET", "/ui/overview/<part>"): "read",
    ("GET", "/ui/actors"): "read",
    ("GET", "/ui/nodes"): "read",
    ("GET", "/ui/nodes/table"): "read",
    ("GET", "/ui/actors/tree"): "read",
    ("GET", "/ui/dead"): "read",
    ("POST", "/ui/dead/requeue"): "operate",
    ("POST", "/ui/dead/purge"): "admin",
    ("POST", "/ui/queues/<name>/<action>"): "operate",
    ("GET", "/ui/schedules"): "read",
    ("GET", "/ui/schedules/table"): "read",
    ("POST", "/ui/schedules"): "operate",
    ("POST", "/ui/schedules/<schedule_id>/<action>"): "operate",
    ("GET", "/ui/tasks"): "read",
    ("GET", "/ui/tasks/table"): "read",
    ("POST", "/ui/tasks"): "submit",
    ("GET", "/ui/tasks/<task_id>"): "read",
    ("GET", "/ui/tasks/<task_id>/live"): "read",
    ("POST", "/ui/tasks/<task_id>/cancel"): "operate",
    ("POST", "/ui/tasks/<task_id>/requeue"): "operate",
    ("GET", "/ui/schedules/<schedule_id>"): "read",
    ("POST", "/ui/schedules/<schedule_id>"): "operate",
    ("GET", "/ui/live"): "read",
    ("GET", "/ui/tasks/charts"): "read",
    ("GET", "/ui/openapi.json"): "read",
    ("GET", "/ui/tasks/bulk"): "read",
    ("POST", "/ui/tasks/bulk/cancel"): "operate",
    ("POST", "/ui/tasks/bulk/requeue"): "operate",
    ("POST", "/ui/tasks/bulk/purge"): "admin",
    ("POST", "/ui/tasks/chosen/cancel"): "operate",
    ("POST", "/ui/tasks/chosen/requeue"): "operate",
}


def routes(app: QuartTrio) -> list[tuple[str, str, str]]:
    """Every (method, rule, endpoint) of ``app``, HEAD left out (it is GET's)."""
    return [
        (method, rule.rule, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods or ())
        if method not in ("HEAD", "OPTIONS")
    ]


@pytest.fixture
async def app(runtime: Runtime) -> QuartTrio:
    return create_app(runtime, auth=Auth(tokens=TOKENS))


@pytest.fixture
async def scoped(app: QuartTrio) -> AsyncIterator[Any]:
    async with app.test_app() as test_app:
        yield test_app.test_client()


class TestDeclared:
    async def test_every_route_declares_a_scope(self, app: QuartTrio) -> None:
        """A route without a declared scope fails here (and is refused when served)."""
        auth = Auth(tokens=TOKENS)
        missing = [
            f"{method} {rule} ({endpoint})"
            for method, rule, endpoint in routes(app)
            if auth.scope_of(app.view_functions[endpoint]) is None
        ]
        assert not missing, "routes without a scope (use @needs(...)): " + ", ".join(missing)

    async def test_every_route_needs_what_the_table_says(self, app: QuartTrio) -> None:
        """Each route's scope is the one in EXPECTED, and EXPECTED lists every route."""
        auth = Auth(tokens=TOKENS)
        found = {
            (method, rule): str(auth.scope_of(app.view_functions[endpoint]))
            for method, rule, endpoint in routes(app)
        }
        assert found == EXPECTED

    async def test_metrics_public(self, runtime: Runtime) -> None:
        app = create_app(runtime, auth=Auth(tokens=TOKENS, metrics_public=True))
        auth = Auth(tokens=TOKENS, metrics_public=True)
        assert auth.scope_of(app.view_functions["system.metrics"]) is Scope.PUBLIC


def _url(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "x" if m.group(1) == "part" else "nope", rule)


API_ROUTES = [
    (method, rule) for (method, rule) in EXPECTED if not rule.startswith("/ui") and rule != "/"
]
CALLERS = [None, *SECRETS]


class TestEnforced:
    @pytest.mark.parametrize(("method", "rule"), API_ROUTES)
    @pytest.mark.parametrize("caller", CALLERS, ids=lambda c: "none" if c is None else c.value)
    async def test_api_route(
        self, scoped: Any, method: str, rule: str, caller: Scope | None
    ) -> None:
        """No token: 401 unless public; a token without the scope: 403 naming it; else on."""
        needed = Scope(EXPECTED[(method, rule)])
        headers = {} if caller is None else {"Authorization": f"Bearer {SECRETS[caller]}"}
        allowed = needed is Scope.PUBLIC or (
            caller is not None and Grant("t", frozenset({caller})).allows(needed)
        )
        if allowed and rule == "/events":
            return  # an endless stream: its refusals are what is checked here
        response = await scoped.open(_url(rule), method=method, headers=headers)
        if allowed:
            assert response.status_code not in (401, 403), await response.get_data()
            return
        body = await response.get_json()
        assert response.status_code == (401 if caller is None else 403)
        assert body["error"]["scope"] == needed.value
        assert f"'{needed.value}' scope" in body["error"]["message"]
        if caller is None:
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="trellis"')
        else:
            assert body["error"]["code"] == "forbidden"

    async def test_unknown_path_needs_a_token(self, scoped: Any) -> None:
        """An unmatched path is 401 without a token, 404 with any valid one."""
        assert (await scoped.get("/nope")).status_code == 401
        bearer = {"Authorization": f"Bearer {SECRETS[Scope.SUBMIT]}"}
        assert (await scoped.get("/nope", headers=bearer)).status_code == 404


class TestRestrictedSubmit:
    BEARER = {"Authorization": f"Bearer {LIMITED}"}

    async def test_allowed_type_and_queue(self, scoped: Any) -> None:
        response = await scoped.post("/tasks", json={"type": "echo"}, headers=self.BEARER)
        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            ({"type": "fail"}, "type 'fail'"),
            ({"type": "echo", "queue": "other"}, "queue 'other'"),
            (
                [{"type": "echo"}, {"type": "block"}],
                "item 1: token 'limited' may not submit tasks of type 'block'",
            ),
        ],
    )
    async def test_refused(self, scoped: Any, runtime: Runtime, body: Any, words: str) -> None:
        """Another type or queue is a 403, and nothing of the request is stored."""
        response = await scoped.post("/tasks", json=body, headers=self.BEARER)
        assert response.status_code == 403
        error = (await response.get_json())["error"]
        assert error["scope"] == "submit" and words in error["message"]
        assert (await runtime.list()).items == []

    async def test_resolved_queue_is_checked(self, runtime: Runtime) -> None:
        """The queue checked is the one the task would go to: its type's default."""
        grant = Grant("q", frozenset({Scope.SUBMIT}), None, frozenset({"other"}))
        task = runtime.new_task("echo", None)
        assert grant.refusal(task.type, task.queue) == (
            f"token 'q' may not submit tasks into queue {task.queue!r}"
        )
        assert grant.refusal("echo", "other") is None

    async def test_read_token_cannot_submit(self, scoped: Any) -> None:
        bearer = {"Authorization": f"Bearer {SECRETS[Scope.READ]}"}
        response = await scoped.post("/tasks", json={"type": "echo"}, headers=bearer)
        assert response.status_code == 403


class TestOpenAPIScopes:
    async def test_each_operation_names_its_scope(self, scoped: Any) -> None:
        bearer = {"Authorization": f"Bearer {SECRETS[Scope.READ]}"}
        spec = await (await scoped.get("/openapi.json", headers=bearer)).get_json()
        for (method, rule), scope in EXPECTED.items():
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue  # the UI, the document itself, the docs page
            assert operation["x-trellis-scope"] == scope, (method, rule)
            assert operation["security"] == ([] if scope == "public" else [{"bearer": [scope]}])
        assert "scope" in spec["components"]["schemas"]["ErrorDetail"]["properties"]
