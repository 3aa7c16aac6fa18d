"""Schedules: when recurring work fires, and what each fire creates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from croniter import croniter

from .._time import iso
from ..rules import LATEST, parse_time
from ..rules import MAX_EVERY as MAX_EVERY
from ..rules import check_cron as check_cron
from ..rules import parse_every as parse_every
from ..rules import zone as zone


class Misfire(StrEnum):
    """What to do with slots missed while no scheduler ran (downtime)."""

    SKIP = "skip"  #: drop missed slots; carry on from the next one
    RUN_ONCE = "run_once"  #: fire once for everything missed, then carry on


#: A slot more than this many seconds late counts as missed.
MISFIRE_GRACE = 30.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring (``every``, ``cron``) or one-shot (``at``) source of tasks.

    Exactly one of ``every``, ``cron`` and ``at`` is set. ``every`` slots are anchored at
    ``anchor`` (the creation time): ``anchor + k * every``.
    """

    id: str
    name: str
    task_type: str
    payload: Any = None
    queue: str | None = None
    priority: int = 0
    every: float | None = None
    cron: str | None = None
    timezone: str | None = None
    at: float | None = None
    paused: bool = False
    misfire: Misfire = Misfire.SKIP
    anchor: float = 0.0
    next_run_at: float | None = None
    last_run_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    declared: bool = field(default=False, compare=False)  # declared in code

    @property
    def spec(self) -> str:
        if self.every is not None:
            return f"every {self.every:g}s"
        if self.cron is not None:
            return f"cron {self.cron}" + (f" ({self.timezone})" if self.timezone else "")
        return f"at {iso(self.at) or 'a time out of range'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "task_type": self.task_type,
            "payload": self.payload,
            "queue": self.queue,
            "priority": self.priority,
            "every": self.every,
            "cron": self.cron,
            "timezone": self.timezone,
            "at": iso(self.at),
            "spec": self.spec,
            "paused": self.paused,
            "misfire": self.misfire.value,
            "next_run_at": iso(self.next_run_at),
            "last_run_at": iso(self.last_run_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def next_slot(schedule: Schedule, after: float) -> float | None:
    """The first slot strictly after ``after`` (``None``: a one-shot already past)."""
    if schedule.every is not None:
        steps = math.floor((after - schedule.anchor) / schedule.every) + 1
        slot = schedule.anchor + max(steps, 1) * schedule.every
        if slot <= after:
            slot += schedule.every
    elif schedule.cron is not None:
        start = datetime.fromtimestamp(after, zone(schedule.timezone))
        slot = float(croniter(schedule.cron, start).get_next(float))
    else:
        assert schedule.at is not None
        return schedule.at if schedule.at > after else None
    return slot if slot <= LATEST else None  # slots end where datetime's range does


def first_slot(schedule: Schedule, now: float) -> float | None:
    """Where a new (or resumed) schedule starts: its next slot from ``now``."""
    if schedule.at is not None:
        return schedule.at  # a one-shot in the past fires at once
    return next_slot(schedule, now)


class Plan(NamedTuple):
    """What one look at a schedule decides: a slot to fire (or none), and what comes next."""

    fire: float | None
    next_run_at: float | None
    missed: int


def plan(schedule: Schedule, now: float, grace: float = MISFIRE_GRACE) -> Plan:
    """Decide the fire for ``now``: pure, so every misfire case is testable.

    Due slots are those at or before ``now``. The latest is fired unless it is more than
    ``grace`` seconds late and the policy is ``skip``; earlier due slots are missed (never
    fired: ``run_once`` folds them into its one fire). A one-shot fires however late: it
    has no later slot to skip to.
    """
    slot = schedule.next_run_at
    if slot is None or slot > now or schedule.paused:
        return Plan(None, slot, 0)
    latest, missed = slot, 0
    following = next_slot(schedule, latest)
    if schedule.every is not None and following is not None and following <= now:
        # Jump straight to the last due slot instead of walking a long outage.
        latest = (
            schedule.anchor + math.floor((now - schedule.anchor) / schedule.every) * schedule.every
        )
        missed = round((latest - slot) / schedule.every)
        following = latest + schedule.every
    while following is not None and following <= now:
        latest, missed = following, missed + 1
        following = next_slot(schedule, latest)
    late = now - latest > grace
    if late and schedule.misfire is Misfire.SKIP and schedule.at is None:
        return Plan(None, following, missed + 1)
    return Plan(latest, following, missed)


#: What computing the slots of a stored schedule may raise when its values are out of any
#: range (written by hand or by an older version): the scheduler skips such a schedule.
UNCOMPUTABLE: tuple[type[Exception], ...] = (ValueError, ArithmeticError, OSError)


def slot_key(schedule_id: str, slot: float) -> str:
    """The idempotency key of a fire: one task per (schedule, slot), on every node.
    Raises ValueError for a slot that is no date-time."""
    text = iso(slot)
    if text is None:
        raise ValueError(f"slot {slot!r} is out of the range of datetime")
    return f"schedule:{schedule_id}:{text}"


def parse_at(value: Any) -> float:
    """A one-shot's time: see :func:`trellis_actors.rules.parse_time`."""
    return parse_time(value, "at")
