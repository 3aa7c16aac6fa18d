"""JSON out: compact and fast, since submissions answer with every task they stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pydantic_core
from quart import Response

from .._time import iso
from ..lifecycle import Task


def encode(data: Any) -> bytes:
    """``data`` as compact JSON bytes (NaN and infinities become ``null``)."""
    try:
        return pydantic_core.to_json(data, inf_nan_mode="null")
    except (pydantic_core.PydanticSerializationError, ValueError):
        # A lone surrogate in a handler's result, say: the standard library escapes it.
        return json.dumps(data, separators=(",", ":")).encode()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``data`` as a JSON response (cheaper than Quart's sorted, provider-based ``jsonify``)."""
    return Response(encode(data), status, dict(headers or {}), content_type="application/json")


class TaskEncoder:
    """``Task.to_dict()``, with the ISO 8601 text of each timestamp made once.

    The tasks of one batch share most timestamps, and formatting them is the bulk of
    ``to_dict``; a test pins that the result equals ``Task.to_dict()``.
    """

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: dict[float | None, str | None] = {None: None}

    def _iso(self, at: float | None) -> str | None:
        try:
            return self._times[at]
        except KeyError:
            text = self._times[at] = iso(at)
            return text

    def __call__(self, task: Task) -> dict[str, Any]:
        t = self._iso
        return {
            "id": task.id,
            "type": task.type,
            "queue": task.queue,
            "payload": task.payload,
            "status": task.status.value,
            "priority": task.priority,
            "attempt": task.attempt,
            "max_attempts": task.max_attempts,
            "run_at": t(task.run_at),
            "timeout": task.timeout,
            "idempotency_key": task.idempotency_key,
            "created_at": t(task.created_at),
            "queued_at": t(task.queued_at),
            "started_at": t(task.started_at),
            "finished_at": t(task.finished_at),
            "updated_at": t(task.updated_at),
            "result": task.result,
            "error": None if task.error is None else task.error.to_dict(),
            "progress": (
                None
                if task.progress is None
                else {"fraction": task.progress, "message": task.progress_message}
            ),
            "lease": (
                None
                if task.lease_owner is None
                else {"owner": task.lease_owner, "expires_at": t(task.lease_expires_at)}
            ),
            "schedule_id": task.schedule_id,
            "node": task.node,
            "worker": task.worker,
            "parent_id": task.parent_id,
        }
