"""Errors outside the handlers: unknown routes, wrong methods, server faults."""

from __future__ import annotations

from typing import Any

from trellis_actors import (
    AskTimeout,
    InvalidTransition,
    StoreUnavailable,
    TaskNotFound,
    UnknownTaskType,
    ValidationError,
)
from trellis_actors.http.errors import ApiError, from_trellis
from trellis_actors.http.schemas import ErrorOut


class TestRouting:
    async def test_unknown_route(self, client: Any) -> None:
        """An unknown path answers 404 in the JSON error shape."""
        response = await client.get("/no/such/thing")
        body = await response.get_json()
        ErrorOut.model_validate(body)
        assert (response.status_code, body["error"]["code"]) == (404, "not_found")

    async def test_wrong_method(self, client: Any) -> None:
        """A wrong method answers 405 JSON with the Allow header."""
        response = await client.put("/tasks")
        body = await response.get_json()
        assert (response.status_code, body["error"]["code"]) == (405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]
        assert response.headers["Content-Type"] == "application/json"


class TestFromTrellis:
    def test_statuses(self) -> None:
        """Each Trellis error maps to its status and code."""
        cases = [
            (UnknownTaskType("x"), 400, "unknown_task_type"),
            (ValidationError("x", field="f"), 400, "validation_error"),
            (TaskNotFound("x"), 404, "not_found"),
            (InvalidTransition("x"), 409, "invalid_transition"),
            (AskTimeout("x"), 503, "unavailable"),
        ]
        for error, status, code in cases:
            answer = from_trellis(error)
            assert (answer.status, answer.code) == (status, code)

    def test_store_unavailable(self) -> None:
        """An outage is a 503 whose Retry-After is the store's next probe, in whole
        seconds, at least one."""
        for retry_after, header in [(0.0, "1"), (0.3, "1"), (2.2, "3"), (5.0, "5")]:
            answer = from_trellis(StoreUnavailable("the store is down", retry_after=retry_after))
            assert (answer.status, answer.code) == (503, "store_unavailable")
            assert answer.headers == {"Retry-After": header}

    def test_field_kept(self) -> None:
        """A validation error keeps the field it names."""
        assert from_trellis(ValidationError("bad", field="delay")).field == "delay"


class TestApiError:
    async def test_shape(self, client: Any) -> None:
        """The body has code and message, and field only when there is one."""
        async with client.app.app_context():
            bare = await ApiError(400, "c", "m").response().get_json()
            named = await ApiError(400, "c", "m", field="f").response().get_json()
        assert bare == {"error": {"code": "c", "message": "m"}}
        assert named == {"error": {"code": "c", "message": "m", "field": "f"}}
