"""The janitor actor: recovers tasks whose lease expired and prunes old tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import structlog

from .._time import Clock
from ..actors import Actor, Ref
from .messages import JanitorMsg, JanitorTick, Prune, Recover, StoreMsg, Sweep, Swept, TryLead

log = structlog.get_logger("trellis.janitor")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished tasks are kept; ``None`` keeps them for ever."""

    completed: float | None = None
    dead: float | None = None


class Janitor(Actor[JanitorMsg]):
    """A round every ``interval`` seconds (a :class:`JanitorTick` from its timer) or when
    asked (:class:`Sweep`): expired leases back to work, then retention pruning. With
    several nodes only the one that leads (``TryLead("janitor")``) does the rounds."""

    kind = "janitor"

    def __init__(
        self, store: Ref[StoreMsg], clock: Clock, *, interval: float, retention: Retention
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._retention = retention
        self.timer(JanitorTick, every=interval)

    async def handle(self, msg: JanitorMsg) -> None:
        match msg:
            case JanitorTick():
                await self._round()
            case Sweep():
                msg.reply.send(await self._round())
            case _:
                assert_never(msg)

    async def _round(self) -> Swept:
        if not await self._store.ask(TryLead("janitor")):
            return Swept(led=False)  # another node's janitor does the rounds
        recovered = await self._store.ask(Recover())
        if recovered:
            log.warning("recovered tasks whose lease expired", count=recovered)
        return Swept(led=True, recovered=recovered, pruned=await self._prune())

    async def _prune(self) -> int:
        completed, dead = self._retention.completed, self._retention.dead
        if completed is None and dead is None:
            return 0
        now = self._clock.now()
        pruned = await self._store.ask(
            Prune(
                None if completed is None else now - completed,
                None if dead is None else now - dead,
            )
        )
        if pruned:
            log.info("pruned finished tasks", count=pruned)
        return pruned
