"""The janitor actor: recovers tasks whose lease expired and prunes old ended tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import structlog

from .._time import Clock
from ..actors import Actor, Ref
from ..lifecycle import TaskStatus
from ..stores.base import BULK_CHUNK
from .messages import JanitorMsg, JanitorTick, Prune, Recover, StoreMsg, Sweep, Swept, TryLead

log = structlog.get_logger("trellis.janitor")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long ended tasks are kept, in seconds after they ended, per status; ``None``
    keeps them for ever. ``failed`` is for tasks whose type keeps no dead letters (the
    others go on to ``dead``)."""

    completed: float | None = None
    failed: float | None = None
    dead: float | None = None
    cancelled: float | None = None

    def __post_init__(self) -> None:
        for status, kept in self._kept():
            if kept is not None and not kept >= 0:  # NaN fails this too
                raise ValueError(f"retention of {status.value} tasks must be >= 0 seconds")

    def _kept(self) -> tuple[tuple[TaskStatus, float | None], ...]:
        return (
            (TaskStatus.COMPLETED, self.completed),
            (TaskStatus.FAILED, self.failed),
            (TaskStatus.DEAD, self.dead),
            (TaskStatus.CANCELLED, self.cancelled),
        )

    def cutoffs(self, now: float) -> dict[TaskStatus, float]:
        """Per status kept for a while: tasks that ended before this time go."""
        return {status: now - kept for status, kept in self._kept() if kept is not None}


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
        """Chunk by chunk, one store commit each, so that other work goes between."""
        cutoffs = self._retention.cutoffs(self._clock.now())
        if not cutoffs:
            return 0
        pruned = 0
        while True:
            deleted = await self._store.ask(Prune(cutoffs, BULK_CHUNK))
            pruned += deleted
            if deleted < BULK_CHUNK:
                break
        if pruned:
            log.info("pruned finished tasks", count=pruned)
        return pruned
