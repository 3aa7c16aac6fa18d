"""Property-based: schemathesis generates requests from ``/openapi.json`` against a real
server, and checks that none gets a 5xx and every response matches its documentation.

(schemathesis' pytest loader needs the schema at collection time, or a fixture hook that
this pytest no longer offers; so each documented operation is a parametrized test that
drives schemathesis' strategies with Hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.e2e.kit import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Every documented operation but ``GET /events``, an endless stream (see test_api.py).
OPERATIONS = [
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{task_id}"),
    ("DELETE", "/tasks/{task_id}"),
    ("GET", "/tasks/{task_id}/events"),
    ("GET", "/tasks/{task_id}/wait"),
    ("POST", "/tasks/{task_id}/requeue"),
    ("POST", "/tasks/bulk/cancel"),
    ("POST", "/tasks/bulk/requeue"),
    ("POST", "/tasks/bulk/purge"),
    ("GET", "/queues"),
    ("POST", "/queues/{name}/pause"),
    ("POST", "/queues/{name}/resume"),
    ("GET", "/workers"),
    ("GET", "/nodes"),
    ("GET", "/task-types"),
    ("GET", "/debug"),
    ("GET", "/health"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/schedules"),
    ("POST", "/schedules"),
    ("GET", "/schedules/{schedule_id}"),
    ("PATCH", "/schedules/{schedule_id}"),
    ("DELETE", "/schedules/{schedule_id}"),
    ("POST", "/schedules/{schedule_id}/pause"),
    ("POST", "/schedules/{schedule_id}/resume"),
    ("POST", "/schedules/{schedule_id}/run"),
    ("GET", "/workflows/{workflow_id}"),
    ("POST", "/workflows/{workflow_id}/signals/{name}"),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The schema of a server on SQLite whose task types are all safe to fuzz: the document
    lists them, so generated submissions are stored and run, not just refused."""
    store = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    server = Server("--app", "tests.e2e.apps:app", "--store", f"sqlite:///{store}")
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        assert server.stop() == 0, "".join(server.stderr)


def test_every_operation_is_covered(api_schema: Any) -> None:
    """The list above is exactly the documented operations, /events aside."""
    documented = {
        (method.upper(), path)
        for path, operations in api_schema.raw_schema["paths"].items()
        for method in operations
    }
    assert documented - {("GET", "/events")} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation(api_schema: Any, method: str, path: str) -> None:
    """Generated requests, valid and invalid, get no 5xx and documented responses."""
    operation = api_schema[path][method]
    cases = st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    run()
