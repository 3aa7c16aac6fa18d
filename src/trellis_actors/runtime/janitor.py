"""The janitor actor: recovers tasks whose lease expired and prunes old tasks."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref
from .messages import Prune, Recover, StoreMsg, TryLead

log = structlog.get_logger("trellis.janitor")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished tasks are kept; ``None`` keeps them for ever."""

    completed: float | None = None
    dead: float | None = None


class Janitor(Actor[None]):
    """Every ``interval`` seconds: expired leases back to work, then retention pruning."""

    kind = "janitor"

    def __init__(
        self, store: Ref[StoreMsg], clock: Clock, *, interval: float, retention: Retention
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._interval = interval
        self._retention = retention

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[None]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(self.ref)
        while not self.stop_requested.is_set():
            with trio.move_on_after(self._interval):
                await self.stop_requested.wait()
            if self.stop_requested.is_set():
                return
            self.alive()
            if not await self._store.ask(TryLead("janitor")):
                continue  # another node's janitor does the rounds
            recovered = await self._store.ask(Recover())
            if recovered:
                log.warning("recovered tasks whose lease expired", count=recovered)
            await self._prune()

    async def _prune(self) -> None:
        completed, dead = self._retention.completed, self._retention.dead
        if completed is None and dead is None:
            return
        now = self._clock.now()
        pruned = await self._store.ask(
            Prune(
                None if completed is None else now - completed,
                None if dead is None else now - dead,
            )
        )
        if pruned:
            log.info("pruned finished tasks", count=pruned)
