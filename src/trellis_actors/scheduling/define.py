"""Validating a schedule's definition, wherever it comes from (code, API, UI, CLI), with
the rules of :mod:`trellis_actors.rules`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import rules
from ..errors import ValidationError
from .model import Misfire

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
    rules.check_schedule_name(name)
    if not isinstance(task_type, str) or not task_type:
        raise ValidationError("task_type must be a task type's name", field="task_type")
    rules.check_text(task_type, "task_type")
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
        rules.check_cron(cron, timezone)
    rules.check_json(payload, "payload")
    if queue is not None:
        rules.check_text(queue, "queue")
    rules.check_priority(priority)
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
        every=None if every is None else rules.parse_every(every),
        cron=cron,
        timezone=timezone,
        at=None if at is None else rules.parse_time(at, "at"),
        queue=queue,
        priority=priority,
        misfire=policy,
        paused=paused,
    )
