"""The scheduler actor: fires due schedule slots, exactly once per (schedule, slot)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, assert_never

import structlog
import trio

from .. import _ids, rules, tracing
from .._time import Clock
from ..actors import Actor, Ref, Request
from ..app import App
from ..errors import (
    ActorCrashed,
    AskTimeout,
    ScheduleNotFound,
    TrellisError,
    UnknownTaskType,
    ValidationError,
)
from ..lifecycle import Task
from ..scheduling.define import FIELDS, ScheduleDefinition, define
from ..scheduling.model import (
    MISFIRE_GRACE,
    UNCOMPUTABLE,
    Plan,
    Schedule,
    first_slot,
    plan,
    slot_key,
)
from .messages import (
    AdvanceSchedule,
    CreateSchedule,
    DeleteSchedule,
    GetSchedule,
    ListSchedules,
    RemoveSchedule,
    RunNow,
    SaveSchedule,
    SchedulerMsg,
    StoreMsg,
    Submit,
    TryLead,
    UpdateSchedule,
    Wake,
)

log = structlog.get_logger("trellis.scheduler")

R = TypeVar("R")


class SchedulerActor(Actor[SchedulerMsg]):
    """Keeps schedules in the store and fires their slots when due.

    On several nodes one leads (``TryLead``); every fire is a task whose idempotency key
    is (schedule, slot), so a slot cannot produce two tasks even across restarts or a
    change of leader, and ``next_run_at`` only moves on by compare-and-set.
    """

    kind = "scheduler"

    def __init__(
        self,
        app: App,
        store: Ref[StoreMsg],
        clock: Clock,
        *,
        refresh: float = 5.0,
        grace: float = MISFIRE_GRACE,
    ) -> None:
        super().__init__()
        self._app = app
        self._store = store
        self._clock = clock
        self._refresh = refresh
        self._grace = grace
        self._wakeup = self.timer(Wake)
        self._declared = False  # the schedules declared in code are in the store

    async def on_start(self) -> None:
        self._rewind()  # declares the schedules of the code, then fires what is due

    async def handle(self, msg: SchedulerMsg) -> None:
        match msg:
            case Wake():
                await self._store_round(self._round)
            case CreateSchedule(definition):
                await self._answer(msg, self._create(definition))
            case UpdateSchedule(schedule_id, changes):
                await self._answer(msg, self._update_by_id(schedule_id, changes))
            case RemoveSchedule(schedule_id):
                await self._answer(msg, self._store.ask(DeleteSchedule(schedule_id)))
            case RunNow(schedule_id):
                await self._answer(msg, self._run_now(schedule_id))
            case _:
                assert_never(msg)

    async def _round(self) -> None:
        if not self._declared:
            await self._declare()
            self._declared = True
        await self._fire_due()
        self._wakeup.at(await self._wake_at())

    async def _store_round(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``; if the store is down or failed, look again after the refresh
        interval instead of crashing (restarts are for faults, not outages)."""
        try:
            await work()
        except (ActorCrashed, AskTimeout) as exc:
            log.warning("the store did not answer the scheduler; trying again", error=str(exc))
            self._wakeup.after(self._refresh)

    async def _answer(self, msg: Request[R], work: Awaitable[R]) -> None:
        """Reply to a command (a refused one gets its error), then look again at once."""
        try:
            msg.reply.send(await work)
        except TrellisError as exc:
            msg.reply.fail(exc)
        self._rewind()

    # -- definitions ----------------------------------------------------------------------
    async def _declare(self) -> None:
        """Create or update the schedules declared in code, by name, without duplicates."""
        declared = self._app.schedules
        if not declared:
            return
        existing = {s.name: s for s in await self._store.ask(ListSchedules())}
        for definition in declared:
            current = existing.get(definition.name)
            if current is None:
                await self._create(definition)
                continue
            changes = {
                key: getattr(definition, key)
                for key in FIELDS - {"paused"}  # an operator's pause outlives a restart
                if getattr(definition, key) != getattr(current, key)
            }
            if changes:
                await self._update(current, changes)

    def _checked(self, definition: ScheduleDefinition) -> ScheduleDefinition:
        """The definition with its payload checked against its task type's contract (a
        schedule whose payload cannot run is refused when it is made, not when it fires)."""
        contract = self._app.get(definition.task_type).contract
        if contract.payload is None:
            return definition
        return replace(definition, payload=contract.accept(definition.payload))

    async def _create(self, definition: ScheduleDefinition) -> Schedule:
        definition = self._checked(definition)
        now = self._clock.now()
        fields = {key: getattr(definition, key) for key in FIELDS}
        schedule = Schedule(id=_ids.new_id(), anchor=now, created_at=now, updated_at=now, **fields)
        schedule = replace(schedule, next_run_at=first_slot(schedule, now))
        saved = await self._store.ask(SaveSchedule(schedule))
        log.info("schedule created", schedule=saved.name, spec=saved.spec)
        return saved

    async def _update(self, current: Schedule, changes: Mapping[str, Any]) -> Schedule:
        unknown = set(changes) - FIELDS
        if unknown:
            name = sorted(unknown)[0]
            raise ValidationError(f"unknown field {name!r}", field=name)
        merged = {key: getattr(current, key) for key in FIELDS} | dict(changes)
        kinds = {"every", "cron", "at"}
        spec_keys = kinds | {"timezone"}
        if kinds & set(changes):
            for key in kinds - set(changes):  # a new kind of spec replaces the old one
                merged[key] = None
            if merged["cron"] is None and "timezone" not in changes:
                merged["timezone"] = None  # a zone belongs to cron alone
        definition = self._checked(define(**merged))
        now = self._clock.now()
        updated = replace(
            current, updated_at=now, **{key: getattr(definition, key) for key in FIELDS}
        )
        respec = any(getattr(updated, k) != getattr(current, k) for k in spec_keys)
        if respec:
            updated = replace(updated, anchor=now)
        if respec or (current.paused and not updated.paused):
            # A new spec starts afresh; a resumed schedule does not fire what it slept through.
            updated = replace(updated, next_run_at=first_slot(updated, now))
        return await self._store.ask(SaveSchedule(updated))

    async def _update_by_id(self, schedule_id: str, changes: Mapping[str, Any]) -> Schedule:
        return await self._update(await self._get(schedule_id), changes)

    async def _run_now(self, schedule_id: str) -> Task:
        return await self._submit(await self._get(schedule_id), None)

    async def _get(self, schedule_id: str) -> Schedule:
        schedule = await self._store.ask(GetSchedule(schedule_id))
        if schedule is None:
            raise ScheduleNotFound(f"no schedule with id {schedule_id!r}")
        return schedule

    # -- firing ---------------------------------------------------------------------------
    async def _fire_due(self) -> None:
        if not await self._store.ask(TryLead("scheduler")):
            return
        now = self._clock.now()
        for schedule in await self._store.ask(ListSchedules()):
            try:
                decision = plan(schedule, now, self._grace)
                if decision.fire is not None:
                    slot_key(schedule.id, decision.fire)
            except UNCOMPUTABLE as exc:
                # Values out of any range (an older version's, say): stop it, not the node.
                log.error(
                    "schedule stopped: its slots cannot be computed; change or delete it",
                    schedule=schedule.name,
                    error=repr(exc),
                )
                decision = Plan(None, None, 0)
            if decision.fire is None and decision.next_run_at == schedule.next_run_at:
                continue
            if decision.missed:
                log.warning(
                    "schedule missed slots",
                    schedule=schedule.name,
                    missed=decision.missed,
                    policy=schedule.misfire.value,
                )
            if decision.fire is not None:
                try:
                    await self._submit(schedule, decision.fire)
                except (UnknownTaskType, ValidationError) as exc:
                    # Its type left the code, or its stored values break the rules: drop
                    # the slot rather than retry it forever.
                    log.error("schedule slot dropped", schedule=schedule.name, error=str(exc))
                    decision = decision._replace(fire=None)
            await self._store.ask(
                AdvanceSchedule(
                    schedule.id, schedule.next_run_at, decision.next_run_at, decision.fire
                )
            )

    async def _submit(self, schedule: Schedule, slot: float | None) -> Task:
        new = rules.new_task(
            self._app,
            schedule.task_type,
            schedule.payload,
            self._clock.now(),
            queue=schedule.queue,
            priority=schedule.priority,
            idempotency_key=None if slot is None else slot_key(schedule.id, slot),
        )
        new = replace(new, schedule_id=schedule.id)
        with tracing.span(
            "trellis.schedule.fire",
            kind="producer",
            attributes={"trellis.schedule": schedule.name, "trellis.task_type": schedule.task_type},
        ):
            new = replace(new, trace_context=tracing.inject())
            (submitted,) = await self._store.ask(Submit((new,)))
        log.info(
            "schedule fired",
            schedule=schedule.name,
            task_id=submitted.task.id,
            slot=slot,
            created=submitted.created,
        )
        return submitted.task

    # -- the timer ------------------------------------------------------------------------
    def _rewind(self) -> None:
        """Look again at once (schedules may have changed): the timer sends a Wake now."""
        self._wakeup.at(trio.current_time())

    async def _wake_at(self) -> float:
        horizon = trio.current_time() + self._refresh
        if not await self._store.ask(TryLead("scheduler")):
            return horizon
        due = [
            self._clock.to_trio(s.next_run_at)
            for s in await self._store.ask(ListSchedules())
            if s.next_run_at is not None and not s.paused
        ]
        return min([horizon, *due])
