"""``POST /tasks``: one task, a batch, idempotency, and every way a body can be refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trellis_actors import Runtime
from trellis_actors.http.schemas import SubmittedOut, TaskOut


async def post(client: Any, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/tasks", data=raw, headers={"Content-Type": "application/json"})
    return response.status_code, await response.get_json()


async def stored(runtime: Runtime) -> int:
    return len((await runtime.list(limit=1000)).items)


class TestSubmitOne:
    async def test_created(self, client: Any, runtime: Runtime) -> None:
        """A task object answers 201 with the stored task, shaped as documented."""
        status, body = await post(client, {"type": "echo", "payload": {"n": 1}})
        assert status == 201
        TaskOut.model_validate(body)
        assert body["type"] == "echo"
        assert body["payload"] == {"n": 1}
        assert (await runtime.wait(body["id"], timeout=5)).result == {"n": 1}

    async def test_options(self, client: Any) -> None:
        """Queue, priority, delay, attempts, timeout and key are taken as given."""
        status, body = await post(
            client,
            {
                "type": "echo",
                "queue": "mail",
                "priority": 7,
                "delay": 3600,
                "max_attempts": 5,
                "timeout": 2.5,
                "idempotency_key": "k-1",
            },
        )
        assert status == 201
        assert (body["queue"], body["priority"], body["max_attempts"]) == ("mail", 7, 5)
        assert (body["timeout"], body["idempotency_key"], body["status"]) == (2.5, "k-1", "pending")
        assert body["run_at"] > body["created_at"]

    async def test_run_at(self, client: Any) -> None:
        """``run_at`` takes an ISO 8601 time; naive times are UTC."""
        status, body = await post(client, {"type": "echo", "run_at": "2999-01-02T03:04:05"})
        assert status == 201
        assert body["run_at"] == "2999-01-02T03:04:05Z"

    async def test_idempotency_repeat(self, client: Any, runtime: Runtime) -> None:
        """A repeat of an idempotency key answers 200 with the first task."""
        first = await post(client, {"type": "echo", "idempotency_key": "once"})
        again = await post(client, {"type": "echo", "idempotency_key": "once", "payload": 2})
        assert (first[0], again[0]) == (201, 200)
        assert again[1]["id"] == first[1]["id"]
        assert await stored(runtime) == 1

    async def test_nulls_mean_defaults(self, client: Any) -> None:
        """``null`` for an optional field gives its default."""
        status, body = await post(client, {"type": "echo", "queue": None, "priority": None})
        assert status == 201
        assert (body["queue"], body["priority"]) == ("default", 0)


class TestSubmitBatch:
    async def test_created(self, client: Any, runtime: Runtime) -> None:
        """An array answers 201 with every stored task, in order."""
        status, body = await post(client, [{"type": "echo", "payload": i} for i in range(5)])
        assert status == 201
        SubmittedOut.model_validate(body)
        assert [task["payload"] for task in body] == [0, 1, 2, 3, 4]
        assert await stored(runtime) == 5

    async def test_invalid_item_stores_nothing(self, client: Any, runtime: Runtime) -> None:
        """One bad item refuses the whole batch, naming the item and field."""
        batch = [{"type": "echo"}, {"type": "echo", "priority": "high"}, {"type": "echo"}]
        status, body = await post(client, batch)
        assert status == 400
        assert body["error"]["field"] == "[1].priority"
        assert await stored(runtime) == 0

    async def test_unknown_type_in_batch(self, client: Any, runtime: Runtime) -> None:
        """An unknown type in a batch is named with its index."""
        status, body = await post(client, [{"type": "echo"}, {"type": "nope"}])
        assert (status, body["error"]["code"]) == (400, "unknown_task_type")
        assert body["error"]["field"] == "[1].type"
        assert body["error"]["message"].startswith("item 1: unknown task type 'nope'")
        assert await stored(runtime) == 0

    async def test_too_many(self, client: Any, runtime: Runtime) -> None:
        """More than 1,000 tasks in one batch is refused."""
        status, body = await post(client, [{"type": "echo"}] * 1001)
        assert status == 400
        assert "at most 1000" in body["error"]["message"]
        assert await stored(runtime) == 0

    async def test_empty(self, client: Any) -> None:
        """An empty batch is refused."""
        status, body = await post(client, [])
        assert (status, body["error"]["code"]) == (400, "validation_error")


class TestSubmitRefused:
    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            (b"{not json", "malformed_json", None),
            (b"", "malformed_json", None),
            (b'{"type": "echo", "payload": NaN}', "malformed_json", None),
            (b'{"type": "echo", "payload": 1e999}', "validation_error", "payload"),
            (b'{"type": "echo", "payload": "a\\u0000b"}', "validation_error", "payload"),
            (
                b'{"type": "echo", "payload": [' + b"9" * 400 + b".5]}",
                "validation_error",
                "payload",
            ),
            (b'"echo"', "validation_error", None),
            (b'{"payload": 1}', "validation_error", "type"),
            (b'{"type": 5}', "validation_error", "type"),
            (b'{"type": "echo", "priority": 1.5}', "validation_error", "priority"),
            (b'{"type": "echo", "priority": true}', "validation_error", "priority"),
            (b'{"type": "echo", "priority": 99999999999}', "validation_error", "priority"),
            (b'{"type": "echo", "delay": -1}', "validation_error", "delay"),
            (b'{"type": "echo", "delay": "soon"}', "validation_error", "delay"),
            (b'{"type": "echo", "delay": 1, "run_at": "2030-01-01"}', "validation_error", "delay"),
            (b'{"type": "echo", "run_at": "tomorrow"}', "validation_error", "run_at"),
            (
                b'{"type": "echo", "run_at": "9999-12-31T23:59:59-23:59"}',
                "validation_error",
                "run_at",
            ),
            (b'{"type": "echo", "max_attempts": 0}', "validation_error", "max_attempts"),
            (b'{"type": "echo", "timeout": 0}', "validation_error", "timeout"),
            (b'{"type": "echo", "queue": ""}', "validation_error", "queue"),
            (b'{"type": "echo", "idempotency_key": ""}', "validation_error", "idempotency_key"),
            (b'{"type": "echo", "colour": "red"}', "validation_error", "colour"),
            (b'{"type": "nope"}', "unknown_task_type", "type"),
        ],
    )
    async def test_refused(
        self, client: Any, runtime: Runtime, body: bytes, code: str, field: str | None
    ) -> None:
        """Bad input gets a 400 with the error shape, naming the field; nothing is stored."""
        status, answer = await post(client, body)
        assert status == 400
        assert answer["error"]["code"] == code
        assert answer["error"].get("field") == field
        assert answer["error"]["message"]
        assert await stored(runtime) == 0

    async def test_unknown_type_lists_known(self, client: Any) -> None:
        """The message for an unknown type lists the registered ones."""
        _, answer = await post(client, {"type": "nope"})
        assert "known types: block, echo, fail" in answer["error"]["message"]

    async def test_oversize_body(self, client: Any, runtime: Runtime) -> None:
        """A body over the configured limit answers 413 and stores nothing."""
        status, answer = await post(client, {"type": "echo", "payload": "x" * 70_000})
        assert status == 413
        assert answer["error"]["code"] == "payload_too_large"
        assert await stored(runtime) == 0
