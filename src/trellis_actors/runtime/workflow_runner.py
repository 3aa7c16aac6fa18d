"""One continuation of a workflow: its function replayed against its history.

The worker calls :func:`replay` with the workflow's stored state. The function runs until
it returns, raises, or awaits something not resolved yet (it is then *suspended*: see
:mod:`trellis_actors.workflow_context`). The worker reports what came of it as the
attempt's outcome, with the continuation to write in the same store transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import trio

from ..app import TaskType
from ..lifecycle import TaskError
from ..rules import TaskTypes
from ..workflow_context import Suspended, WorkflowContext
from ..workflows import Continuation, StepFailed, WorkflowState


@dataclass(frozen=True, slots=True)
class Replayed:
    """How a replay ended: ``waiting`` (until ``wake_at`` at the latest, None: no
    timer), returned ``result``, or failed for good with ``error`` (a step's failure
    left uncaught, or a history the code disagreed with: no retry helps)."""

    continuation: Continuation
    waiting: bool = False
    wake_at: float | None = None
    result: Any = None
    error: TaskError | None = None


async def replay(
    task_type: TaskType, payload: Any, state: WorkflowState, now: float, types: TaskTypes
) -> Replayed:
    """Run ``task_type``'s workflow function on ``payload`` against ``state`` at ``now``.
    Anything else it raises comes out as raised (the type's retry policy decides)."""
    wf = WorkflowContext(state, now, types)
    result: Any = None
    try:
        # A workflow's handler takes a WorkflowContext where a task's takes a TaskContext.
        result = await task_type.handler(wf, payload)  # type: ignore[arg-type]
    except trio.Cancelled:
        raise  # a cancel or timeout of this continuation: the worker decides
    except Suspended:
        pass
    except StepFailed as exc:
        if not (wf.suspended or wf.broken):
            error = TaskError(exc.error.type, str(exc), exc.error.traceback)
            return Replayed(Continuation(), error=error)
    except BaseException:
        if not (wf.suspended or wf.broken):
            raise
    if wf.broken is not None:
        return Replayed(Continuation(), error=TaskError("NonDeterminism", str(wf.broken)))
    if wf.suspended:
        wake_at = None if wf.wake_at == math.inf else wf.wake_at
        return Replayed(wf.continuation(), waiting=True, wake_at=wake_at)
    return Replayed(wf.continuation(), result=result)
