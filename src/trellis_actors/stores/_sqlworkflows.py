"""Workflows in the SQL stores: history, signals and steps, inside the caller's
transaction. Mixed into :class:`~trellis_actors.stores._sqllogic.TaskLogic`, whose
:meth:`decide`, :meth:`finish` and :meth:`cancel` call :meth:`follow` and
:meth:`continue_workflow`; the memory store does the same with the same decisions
(:mod:`trellis_actors.decisions`, :mod:`trellis_actors.workflows`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import decisions, workflows
from ..lifecycle import NewTask, Task, TaskError, TaskStatus, Transition
from ._sql import Cursor
from .base import Submitted


class WorkflowSteps:
    """The workflow half of the store protocol, over the dialect's named queries."""

    q: Any  # the dialect's queries (TaskLogic's)

    if TYPE_CHECKING:  # what TaskLogic, which this is mixed into, provides

        def key(self, task_id: str) -> str | None: ...
        def ids_param(self, ids: list[str]) -> Any: ...
        def task(self, row: Any) -> Task: ...
        def select(self, cur: Cursor, query: str, **params: Any) -> list[Task]: ...
        def lock_one(self, cur: Cursor, task_id: str) -> Task: ...
        def locked(self, cur: Cursor, task_ids: Iterable[str]) -> dict[str, Task]: ...
        def enqueue(
            self, cur: Cursor, tasks: Sequence[NewTask], now: float
        ) -> tuple[list[Submitted], list[Transition]]: ...
        def decide(
            self,
            cur: Cursor,
            changes: Iterable[decisions.Change | None],
            now: float | None = None,
        ) -> list[Transition]: ...
        def _json(self, value: Any) -> Any: ...

    # -- rows ----------------------------------------------------------------------------
    def entry(self, row: Any) -> workflows.HistoryEntry:
        error = self._json(row["error"])
        outcome = row["outcome"]
        return workflows.HistoryEntry(
            workflow_id=str(row["workflow_id"]),
            seq=row["seq"],
            kind=workflows.EntryKind(row["kind"]),
            name=row["name"],
            step_id=None if row["step_id"] is None else str(row["step_id"]),
            wake_at=row["wake_at"],
            value=self._json(row["value"]),
            error=None if error is None else TaskError.from_dict(error),
            outcome=None if outcome is None else workflows.EntryOutcome(outcome),
            recorded_at=row["recorded_at"],
            resolved_at=row["resolved_at"],
        )

    def signal_record(self, row: Any) -> workflows.SignalRecord:
        return workflows.SignalRecord(
            id=row["id"],
            workflow_id=str(row["workflow_id"]),
            name=row["name"],
            payload=self._json(row["payload"]),
            sent_at=row["sent_at"],
            consumed_by=row["consumed_by"],
        )

    def history(self, cur: Cursor, workflow_id: str) -> list[workflows.HistoryEntry]:
        cur.execute(self.q["history"], {"id": workflow_id})
        return [self.entry(row) for row in cur.fetchall()]

    def signals(self, cur: Cursor, workflow_id: str) -> list[workflows.SignalRecord]:
        cur.execute(self.q["signals"], {"id": workflow_id})
        return [self.signal_record(row) for row in cur.fetchall()]

    # -- the protocol --------------------------------------------------------------------
    def workflow(self, cur: Cursor, workflow_id: str) -> workflows.WorkflowState | None:
        key = self.key(workflow_id)
        found = [] if key is None else self.select(cur, "get_task", id=key)
        if not found:
            return None
        return workflows.WorkflowState(
            found[0],
            self.history(cur, found[0].id),
            self.signals(cur, found[0].id),
            self.select(cur, "steps", id=found[0].id),
        )

    def signal(
        self, cur: Cursor, workflow_id: str, name: str, payload: object, now: float
    ) -> list[Transition]:
        task = self.lock_one(cur, workflow_id)
        workflows.check_signalled(task)
        params = {
            "workflow_id": task.id,
            "name": name,
            "payload": json.dumps(payload),
            "sent_at": now,
        }
        cur.execute(self.q["insert_signal"], params)
        if not workflows.awaits_signal(self.history(cur, task.id), name):
            return []
        return self.decide(cur, [decisions.wake(task, now, f"signal {name!r}")])

    def continue_workflow(
        self,
        cur: Cursor,
        workflow: Task,
        continuation: workflows.Continuation,
        now: float,
    ) -> list[Transition]:
        """Write a continuation (its workflow's outcome is written, the row locked); if
        the workflow now waits for something that happened meanwhile, queue it again."""
        steps = iter(continuation.steps)
        moves: list[Transition] = []
        rows = []
        for entry in continuation.entries:
            step_id = None
            if entry.kind is workflows.EntryKind.STEP:
                (started,), arrived = self.enqueue(cur, [next(steps)], now)
                moves += arrived
                step_id = started.task.id
            rows.append(_entry_row(entry, step_id))
        if rows:
            cur.executemany(self.q["insert_history"], rows)
        for done in continuation.resolved:
            params = {
                "workflow_id": workflow.id,
                "seq": done.seq,
                "outcome": done.outcome.value,
                "value": json.dumps(done.value),
                "at": now,
            }
            cur.execute(self.q["resolve_history"], params)
        for signal_id, seq in continuation.consumed:
            params = {"id": signal_id, "workflow_id": workflow.id, "seq": seq}
            cur.execute(self.q["consume_signal"], params)
        if workflow.status is TaskStatus.WAITING:
            history = {entry.seq: entry for entry in self.history(cur, workflow.id)}
            waiting = [s for s in self.signals(cur, workflow.id) if s.consumed_by is None]
            why = workflows.stirs(continuation, history, waiting, workflow.run_at, now)
            if why is not None:
                moves += self.decide(cur, [decisions.wake(workflow, now, why)])
        return moves

    def follow(self, cur: Cursor, moves: list[Transition], now: float) -> list[Transition]:
        """What ``moves`` (written) lead to, written too: a step that ended is written
        into its workflow's history and wakes it; a workflow cancelled cancels its
        steps. Returns the moves made (each may lead to more: followed in turn)."""
        made: list[Transition] = []
        pending = moves
        while pending:
            ended = [move.task for move in pending if decisions.step_ended(move)]
            cancelled = [
                move.task.id for move in pending if move.event.to_status is TaskStatus.CANCELLED
            ]
            changes: list[decisions.Change | None] = []
            if cancelled:
                params = {"ids": self.ids_param(cancelled)}
                cur.execute(self.q["active_steps"], params)
                steps = [self.task(row) for row in cur.fetchall()]
                changes += [decisions.cancel(s, now, decisions.WITH_WORKFLOW) for s in steps]
            if ended:
                for step in ended:
                    outcome, value, error = workflows.step_resolution(step)
                    params = {
                        "workflow_id": step.parent_id,
                        "step_id": step.id,
                        "outcome": outcome.value,
                        "value": json.dumps(value),
                        "error": None if error is None else json.dumps(error.to_dict()),
                        "at": now,
                    }
                    cur.execute(self.q["resolve_step"], params)
                parents = self.locked(cur, sorted({s.parent_id for s in ended if s.parent_id}))
                for parent in parents.values():
                    changes.append(decisions.wake(parent, now, "a step ended"))
            pending = self.decide(cur, changes)
            made += pending
        return made

    def forget_workflows(self, cur: Cursor, ids: list[str]) -> None:
        """The history and signals of the deleted tasks of ``ids`` (in this transaction)."""
        params = {"ids": self.ids_param(ids)}
        cur.execute(self.q["delete_histories"], params)
        cur.execute(self.q["delete_signals"], params)


def _entry_row(entry: workflows.HistoryEntry, step_id: str | None) -> dict[str, Any]:
    return {
        "workflow_id": entry.workflow_id,
        "seq": entry.seq,
        "kind": entry.kind.value,
        "name": entry.name,
        "step_id": step_id,
        "wake_at": entry.wake_at,
        "value": json.dumps(entry.value),
        "error": None if entry.error is None else json.dumps(entry.error.to_dict()),
        "outcome": None if entry.outcome is None else entry.outcome.value,
        "recorded_at": entry.recorded_at,
        "resolved_at": entry.resolved_at,
    }
