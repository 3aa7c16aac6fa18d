"""Validating a schedule's definition, wherever it comes from (code, API, CLI)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .model import Misfire, check_cron, parse_at, parse_every

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

#: Fields of a definition that a client may set or change.
FIELDS = frozenset(
    {
        "name",
        "task_type",
        "payload",
        "every",
        "cron",
        "timezone",
        "at",
        "queue",
        "priority",
        "misfire",
        "paused",
    }
)


@dataclass(frozen=True, slots=True)
class ScheduleDefinition:
    """What a schedule should be; the scheduler turns it into a stored :class:`Schedule`."""

    name: str
    task_type: str
    payload: Any = None
    every: float | None = None
    cron: str | None = None
    timezone: str | None = None
    at: float | None = None
    queue: str | None = None
    priority: int = 0
    misfire: Misfire = Misfire.SKIP
    paused: bool = False


def define(
    name: Any,
    task_type: Any,
    payload: Any = None,
    *,
    every: Any = None,
    cron: Any = None,
    timezone: Any = None,
    at: Any = None,
    queue: Any = None,
    priority: Any = 0,
    misfire: Any = "skip",
    paused: Any = False,
) -> ScheduleDefinition:
    """Check every field; raises :class:`ValidationError` naming the first bad one."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            "name must be 1-128 letters, digits, '_', '.', ':' or '-'", field="name"
        )
    if not isinstance(task_type, str) or not task_type:
        raise ValidationError("task_type must be a task type's name", field="task_type")
    given = [
        key for key, value in (("every", every), ("cron", cron), ("at", at)) if value is not None
    ]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of every, cron or at", field=given[1] if given else "every"
        )
    if timezone is not None and cron is None:
        raise ValidationError("timezone only applies to cron schedules", field="timezone")
    if cron is not None:
        check_cron(cron, timezone)
    try:
        json.dumps(payload)
    except (TypeError, ValueError):
        raise ValidationError("payload must be JSON-serialisable", field="payload") from None
    if queue is not None and (not isinstance(queue, str) or not queue or len(queue) > 128):
        raise ValidationError("queue must be a non-empty string", field="queue")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ValidationError("priority must be an integer", field="priority")
    try:
        policy = Misfire(misfire)
    except ValueError:
        raise ValidationError("misfire must be 'skip' or 'run_once'", field="misfire") from None
    if not isinstance(paused, bool):
        raise ValidationError("paused must be true or false", field="paused")
    return ScheduleDefinition(
        name=name,
        task_type=task_type,
        payload=payload,
        every=None if every is None else parse_every(every),
        cron=cron,
        timezone=timezone,
        at=None if at is None else parse_at(at),
        queue=queue,
        priority=priority,
        misfire=policy,
        paused=paused,
    )
