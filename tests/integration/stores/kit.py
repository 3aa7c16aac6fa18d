"""What the store tests share: fixed times, an error, and ways to compare tasks and moves."""

from __future__ import annotations

import dataclasses
from typing import Any

from trellis_actors.lifecycle import Task, TaskError, TaskStatus, Transition

S = TaskStatus
NOW = 1_000.0
LEASE = 60.0
BOOM = TaskError("ValueError", "boom", "Traceback …")


def fields(task: Task | None) -> dict[str, Any]:
    assert task is not None
    return dataclasses.asdict(task)


def path(moves: list[Transition]) -> list[tuple[S | None, S]]:
    return [(move.event.from_status, move.event.to_status) for move in moves]
