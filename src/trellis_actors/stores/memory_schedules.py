"""Schedules kept in memory, for :class:`~trellis_actors.stores.memory.MemoryStore`."""

from __future__ import annotations

from dataclasses import replace

from ..errors import ValidationError
from ..scheduling.model import Schedule


class MemorySchedules:
    """The schedule half of the store protocol, in a dictionary."""

    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    async def save_schedule(self, schedule: Schedule) -> Schedule:
        for other in self._schedules.values():
            if other.name == schedule.name and other.id != schedule.id:
                raise ValidationError(
                    f"a schedule named {schedule.name!r} already exists", field="name"
                )
        self._schedules[schedule.id] = schedule
        return schedule

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return self._schedules.get(schedule_id)

    async def list_schedules(self) -> list[Schedule]:
        return sorted(self._schedules.values(), key=lambda s: s.name)

    async def delete_schedule(self, schedule_id: str) -> bool:
        return self._schedules.pop(schedule_id, None) is not None

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float | None,
        next_run_at: float | None,
        fired_at: float | None,
    ) -> bool:
        current = self._schedules.get(schedule_id)
        if current is None or current.next_run_at != expected:
            return False
        last = current.last_run_at if fired_at is None else fired_at
        self._schedules[schedule_id] = replace(current, next_run_at=next_run_at, last_run_at=last)
        return True
