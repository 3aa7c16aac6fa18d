"""Bulk cancel, requeue and purge: a filter's tasks, one store commit per chunk."""

from __future__ import annotations

import structlog

from .. import _ids
from ..actors import Ref
from ..decisions import WITH_WORKFLOW, Bulk, Selection
from ..lifecycle import TaskStatus
from ..stores.base import BULK_CHUNK, BulkStep
from .messages import BulkChunk, CancelRunning, QueueMsg, StoreMsg

log = structlog.get_logger("trellis.bulk")


async def run_bulk(
    store: Ref[StoreMsg],
    queue: Ref[QueueMsg],
    action: Bulk,
    selection: Selection,
    *,
    dry_run: bool = False,
    chunk: int = BULK_CHUNK,
) -> int:
    """Do ``action`` to every task ``selection`` takes in; returns how many it touched
    (with ``dry_run``, how many it would touch, touching none).

    The tasks are taken by id, ``chunk`` at a time, each chunk one message to the store
    actor and one commit, so other work goes between chunks. Only tasks that exist when
    the operation begins are taken: its ids are bounded by a new one made now. A task this
    node holds, claimed or running, is dropped or its handler stopped here; another node
    finds out at its next lease renewal.
    """
    step = BulkStep(action, selection, until=_ids.new_id(), limit=chunk, dry_run=dry_run)
    touched = 0
    while True:
        done = await store.ask(BulkChunk(step))
        touched += done.touched
        # This node's queue drops or stops those it holds, and the steps of cancelled
        # workflows that were claimed or running.
        steps = [
            move.task.id
            for move in done.moves
            if move.event.detail == WITH_WORKFLOW
            and move.event.from_status in (TaskStatus.RUNNING, TaskStatus.QUEUED)
        ]
        for task_id in dict.fromkeys([*done.held, *steps]):
            await queue.tell(CancelRunning(task_id))
        if done.after is None:
            break
        step = BulkStep(action, selection, step.until, done.after, chunk, dry_run)
    if touched and not dry_run:
        log.info("bulk operation", action=action.value, touched=touched)
    return touched
