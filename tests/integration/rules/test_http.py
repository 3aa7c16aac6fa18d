"""The API on a real server over every store: input no store can hold is a 4xx naming the
field, never a 500, and never reaches the store (its actor does not restart)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.integration.rules.kit import Served, restarts


async def post(served: Served, path: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = await served.client.post(
        path, content=raw, headers={"Content-Type": "application/json"}
    )
    return answer.status_code, answer.json()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class TestSubmit:
    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"type": "echo", "payload": {"s": "a\x00b"}}, "payload", "must not contain NUL"),
            ({"type": "echo", "payload": {"a\x00": 1}}, "payload", "keys must not contain NUL"),
            ({"type": "echo", "priority": 2**31}, "priority", "less than or equal to 2147483647"),
            ({"type": "echo", "priority": 2**63}, "priority", "less than or equal to 2147483647"),
            ({"type": "echo", "queue": "a\x00b"}, "queue", "queue: strings must not contain NUL"),
            ({"type": "echo", "delay": 1e12}, "delay", "less than or equal to 315360000"),
            ({"type": "echo", "run_at": "9999-12-31T23:59:59-14:00"}, "run_at", "between"),
            ({"type": "echo", "run_at": "0001-01-01T00:00:00+14:00"}, "run_at", "between"),
            (
                b'{"type": "echo", "payload": ' + nested(65) + b"}",
                "payload",
                "nest at most 64 levels deep",
            ),
            (b'{"type": "echo", "payload": [1e999]}', "payload", "numbers must be finite"),
        ],
    )
    async def test_refused(self, served: Served, body: Any, field: str, message: str) -> None:
        """A 400 whose body names the field and states the rule; nothing is stored."""
        status, answer = await post(served, "/tasks", body)
        assert status == 400, answer
        assert answer["error"]["code"] == "validation_error"
        assert answer["error"]["field"] == field
        assert message in answer["error"]["message"]
        assert (await served.runtime.list()).items == []
        assert restarts(served.runtime) == {}

    async def test_nested_5000_levels(self, served: Served) -> None:
        """A payload nested 5,000 levels is a clean 400 stating the rule, not a 500."""
        status, answer = await post(
            served, "/tasks", b'{"type": "echo", "payload": ' + nested(5000) + b"}"
        )
        assert status == 400, answer
        assert "a payload may nest at most 64 levels" in answer["error"]["message"]
        assert restarts(served.runtime) == {}

    async def test_an_escaped_backslash_is_not_a_nul(self, served: Served) -> None:
        """The six characters ``\\u0000`` in a string are text, not a NUL: stored."""
        status, answer = await post(served, "/tasks", {"type": "echo", "payload": "\\u0000"})
        assert status == 201, answer
        assert answer["payload"] == "\\u0000"

    async def test_batch_with_one_bad_item(self, served: Served) -> None:
        """One bad item refuses the whole batch before anything reaches the store."""
        batch: list[dict[str, Any]] = [{"type": "echo", "payload": i} for i in range(5)]
        batch[3]["payload"] = {"deep": ["\x00"]}
        status, answer = await post(served, "/tasks", batch)
        assert (status, answer["error"]["field"]) == (400, "[3].payload")
        assert answer["error"]["message"].startswith("item 3: payload must be")
        batch[3] = {"type": "echo", "priority": 2**40}
        status, answer = await post(served, "/tasks", batch)
        assert (status, answer["error"]["field"]) == (400, "[3].priority")
        assert (await served.runtime.list()).items == []
        assert restarts(served.runtime) == {}


class TestReading:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("type=%00", "type"),
            ("queue=a%00b", "queue"),
            ("type=" + "t" * 129, "type"),
            ("cursor=%00", "cursor"),
            ("cursor=not-a-task-id", "cursor"),
            ("status=pending&queue=%00", "queue"),
        ],
    )
    async def test_bad_filters(self, served: Served, query: str, field: str) -> None:
        """A filter no store can match is a 400 naming it, on every store."""
        await served.runtime.submit("echo", 1)
        for _ in range(12):  # more than the supervisor's restart intensity, were it to crash
            answer = await served.client.get(f"/tasks?{query}")
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["field"] == field
        assert restarts(served.runtime) == {}
        assert (await served.client.get("/tasks")).status_code == 200

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/tasks/a%00"),
            ("DELETE", "/tasks/a%00"),
            ("GET", "/tasks/a%00/events"),
            ("POST", "/tasks/a%00/requeue"),
            ("GET", "/tasks/" + "x" * 200),
            ("GET", "/schedules/a%00"),
            ("PATCH", "/schedules/a%00"),
            ("DELETE", "/schedules/a%00"),
            ("POST", "/schedules/a%00/pause"),
            ("POST", "/schedules/a%00/resume"),
            ("POST", "/schedules/a%00/run"),
        ],
    )
    async def test_impossible_ids(self, served: Served, method: str, path: str) -> None:
        """An id that cannot exist is a 404, on every store; the store actor lives on."""
        body = b'{"priority": 1}' if method == "PATCH" else None
        for _ in range(12):
            answer = await served.client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "not_found"
        assert restarts(served.runtime) == {}


class TestSchedules:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"at": "0001-01-01T00:00:00+14:00"}, "at"),
            ({"at": "9999-12-31T23:59:59-14:00"}, "at"),
            ({"every": 60, "payload": {"a": "\x00"}}, "payload"),
            ({"every": 60, "queue": "a\x00"}, "queue"),
            ({"every": 1e12}, "every"),
            ({"cron": "0 * * * *", "timezone": "Europe/\x00"}, "timezone"),
        ],
    )
    async def test_refused(self, served: Served, fields: dict[str, Any], field: str) -> None:
        """A spec out of range is a 400 naming the field; ``GET /schedules`` still works."""
        status, answer = await post(
            served, "/schedules", {"name": "s", "task_type": "echo", **fields}
        )
        assert (status, answer["error"]["field"]) == (400, field), answer
        listing = await served.client.get("/schedules")
        assert (listing.status_code, listing.json()) == (200, {"items": []})
        assert restarts(served.runtime) == {}
