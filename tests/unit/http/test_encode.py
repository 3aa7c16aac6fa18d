"""JSON encoding of responses: the fast task encoder and the byte encoder."""

from __future__ import annotations

import json

from trellis_actors import Task, TaskError, TaskStatus
from trellis_actors.http._encode import TaskEncoder, encode

NOW = 1_790_000_000.25


def tasks() -> list[Task]:
    base = {"type": "echo", "queue": "default", "created_at": NOW, "updated_at": NOW}
    return [
        Task(id="a", payload=None, status=TaskStatus.PENDING, **base),
        Task(
            id="b",
            payload={"x": [1, 2]},
            status=TaskStatus.RUNNING,
            attempt=1,
            run_at=NOW,
            queued_at=NOW,
            started_at=NOW + 1,
            progress=0.5,
            progress_message="half",
            lease_owner="node",
            lease_expires_at=NOW + 30,
            **base,
        ),
        Task(
            id="c",
            payload="p",
            status=TaskStatus.DEAD,
            finished_at=NOW + 2,
            error=TaskError("ValueError", "bad", "Traceback ..."),
            result={"r": 1},
            schedule_id="s",
            idempotency_key="k",
            timeout=2.5,
            **base,
        ),
    ]


class TestTaskEncoder:
    def test_same_as_to_dict(self) -> None:
        """The encoder's output equals Task.to_dict() for every shape of task."""
        encoder = TaskEncoder()
        for task in tasks():
            assert encoder(task) == task.to_dict()


class TestEncode:
    def test_compact(self) -> None:
        """Compact JSON, UTF-8."""
        assert encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()

    def test_non_finite_become_null(self) -> None:
        """NaN and infinities, which JSON cannot hold, become null."""
        assert json.loads(encode([float("inf"), float("nan")])) == [None, None]

    def test_lone_surrogate(self) -> None:
        """A lone surrogate (from a handler's result) is escaped, not an error."""
        assert json.loads(encode({"s": "\ud800"})) == {"s": "\ud800"}
