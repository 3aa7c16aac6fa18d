"""Schedules in a SQL table: the schedule half of the store protocol, for both SQL stores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..scheduling.model import Misfire, Schedule
from . import _sql
from ._sql import Cursor


class ScheduleSteps:
    """Schedule reads and writes inside the caller's transaction (like MemorySchedules)."""

    dialect: str
    json_decoded = False  # True when the driver already turns JSON columns into objects

    def __init__(self) -> None:
        self.q: Mapping[str, str] = _sql.queries(self.dialect)

    def _json(self, value: Any) -> Any:
        return value if value is None or self.json_decoded else json.loads(value)

    def schedule(self, row: Any) -> Schedule:
        return Schedule(
            id=row["id"],
            name=row["name"],
            task_type=row["task_type"],
            payload=self._json(row["payload"]),
            queue=row["queue"],
            priority=row["priority"],
            every=row["every"],
            cron=row["cron"],
            timezone=row["timezone"],
            at=row["at"],
            paused=bool(row["paused"]),
            misfire=Misfire(row["misfire"]),
            anchor=row["anchor"],
            next_run_at=row["next_run_at"],
            last_run_at=row["last_run_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            declared=bool(row["declared"]),
        )

    @staticmethod
    def schedule_row(schedule: Schedule) -> dict[str, Any]:
        return {
            "id": schedule.id,
            "name": schedule.name,
            "task_type": schedule.task_type,
            "payload": json.dumps(schedule.payload),
            "queue": schedule.queue,
            "priority": schedule.priority,
            "every": schedule.every,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "at": schedule.at,
            "paused": schedule.paused,
            "misfire": schedule.misfire.value,
            "anchor": schedule.anchor,
            "next_run_at": schedule.next_run_at,
            "last_run_at": schedule.last_run_at,
            "created_at": schedule.created_at,
            "updated_at": schedule.updated_at,
            "declared": schedule.declared,
        }

    def save_schedule(self, cur: Cursor, schedule: Schedule) -> Schedule:
        cur.execute(self.q["schedule_name_taken"], {"name": schedule.name, "id": schedule.id})
        if cur.fetchone() is not None:
            raise ValidationError(
                f"a schedule named {schedule.name!r} already exists", field="name"
            )
        cur.execute(self.q["save_schedule"], self.schedule_row(schedule))
        return schedule

    def get_schedule(self, cur: Cursor, schedule_id: str) -> Schedule | None:
        cur.execute(self.q["get_schedule"], {"id": schedule_id})
        row = cur.fetchone()
        return None if row is None else self.schedule(row)

    def list_schedules(self, cur: Cursor) -> list[Schedule]:
        cur.execute(self.q["list_schedules"], {})
        return [self.schedule(row) for row in cur.fetchall()]

    def delete_schedule(self, cur: Cursor, schedule_id: str) -> bool:
        cur.execute(self.q["delete_schedule"], {"id": schedule_id})
        return cur.rowcount > 0

    def advance_schedule(
        self,
        cur: Cursor,
        schedule_id: str,
        expected: float | None,
        next_run_at: float | None,
        fired_at: float | None,
    ) -> bool:
        params = {
            "id": schedule_id,
            "expected": expected,
            "next_run_at": next_run_at,
            "fired_at": fired_at,
        }
        cur.execute(self.q["advance_schedule"], params)
        return cur.rowcount == 1
