"""The process pool of ``executor="process"`` handlers.

STAND-IN, to be replaced at merge: this file holds only the messages and outcome the
worker uses, and a ``ProcessPool`` that refuses work. The real pool (supervised worker
processes) is built on another branch and replaces this whole file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..actors import Actor, Request
from ..lifecycle import TaskError


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a run in a pool process ended."""

    result: str | None  # the result as JSON text (None: returned None)
    exception: BaseException | None  # what the handler raised (pickled back), if any
    # Set instead when the child could not report its own exception: "WorkerCrashed"
    # (the process died), "ResultNotSerializable" (the result is not JSON).
    error: TaskError | None


@dataclass(frozen=True, slots=True)
class RunInProcess(Request[ProcessOutcome]):
    """Run ``handler(ctx, payload)`` in a pool process."""

    job: str  # f"{task_id}:{attempt}"
    handler: Callable[[Any, Any], Any]  # a module-level def (ctx, payload) -> result
    payload: str  # JSON text
    task_id: str
    type: str
    attempt: int
    progress: Callable[[float, str | None], None]  # called in the pool's event loop


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Kill the process running ``job``, if any."""

    job: str


PoolMsg = RunInProcess | CancelRun


class ProcessPool(Actor[PoolMsg]):
    """STAND-IN: refuses every message until the real pool replaces this file."""

    kind = "processes"

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    async def handle(self, msg: PoolMsg) -> None:
        raise NotImplementedError("process pool not built yet")
