"""Durable workflows: the history a workflow is replayed against, and what a
continuation leaves the store to write.

A workflow is a task (of a type registered with ``@app.workflow``) whose function is run
again from the start whenever it must go on: after a step ended, a timer fell due, a
signal came or a node died. Each thing it asks for (a step, a sleep, a signal, a recorded
``now``/``random``/``uuid``) takes the next *sequence number* and is kept as a
:class:`HistoryEntry`; on the next run the entries already there answer at once.

This module holds the vocabulary every store and the runner share, and the pure
decisions the stores make about a workflow: whether a continuation that ends waiting
must go straight back to the queue (:func:`stirs`), and what a step's end writes into
its workflow's history (:func:`step_resolution`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._time import iso
from .errors import TrellisError
from .lifecycle import TERMINAL, NewTask, Task, TaskError, TaskStatus


class EntryKind(StrEnum):
    """What a history entry records."""

    STEP = "step"
    SLEEP = "sleep"
    SIGNAL = "signal"
    NOW = "now"
    RANDOM = "random"
    UUID = "uuid"


class EntryOutcome(StrEnum):
    """How a history entry was resolved (``None`` on the entry: not yet)."""

    COMPLETED = "completed"  # a step's task completed
    FAILED = "failed"  # a step's task failed, was dead-lettered or cancelled
    ELAPSED = "elapsed"  # a sleep
    RECEIVED = "received"  # a signal wait got its signal
    TIMED_OUT = "timed_out"  # a signal wait's timeout passed first
    RECORDED = "recorded"  # a recorded value (now, random, uuid)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing a workflow asked for, at its place (``seq``, from 1) in the history.

    ``name``: a step's task type, a signal's name. ``wake_at``: a sleep's wake time, a
    signal wait's deadline. ``value``: a step's result, a signal's payload, a recorded
    value. ``error``: a failed step's error. ``outcome`` is None while it is pending."""

    workflow_id: str
    seq: int
    kind: EntryKind
    name: str | None = None
    step_id: str | None = None
    wake_at: float | None = None
    value: Any = None
    error: TaskError | None = None
    outcome: EntryOutcome | None = None
    recorded_at: float = 0.0
    resolved_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "name": self.name,
            "step_id": self.step_id,
            "wake_at": iso(self.wake_at),
            "value": self.value,
            "error": None if self.error is None else self.error.to_dict(),
            "outcome": None if self.outcome is None else self.outcome.value,
            "recorded_at": iso(self.recorded_at),
            "resolved_at": iso(self.resolved_at),
        }


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A signal sent to a workflow; ``consumed_by`` is the history entry (seq) that
    received it, None while it waits to be received."""

    id: int
    workflow_id: str
    name: str
    payload: Any
    sent_at: float
    consumed_by: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "payload": self.payload,
            "sent_at": iso(self.sent_at),
            "consumed_by": self.consumed_by,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """An entry already in the history that a continuation resolved (a sleep elapsed, a
    signal wait received its signal or timed out)."""

    seq: int
    outcome: EntryOutcome
    value: Any = None


@dataclass(frozen=True, slots=True)
class Continuation:
    """What one run of a workflow function leaves the store to write with its outcome,
    in the same transaction: new history entries (a step's ``step_id`` is filled by the
    store, which creates the step task from ``steps``, one per new step entry, in
    order), resolutions of older entries, the signals it received, and what it waits
    for: the steps (by seq) and signal names whose news must wake it."""

    entries: tuple[HistoryEntry, ...] = ()
    steps: tuple[NewTask, ...] = ()
    resolved: tuple[Resolution, ...] = ()
    consumed: tuple[tuple[int, int], ...] = ()  # (signal id, seq)
    awaiting_steps: tuple[int, ...] = ()
    awaiting_signals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """A workflow as the store holds it: its task, its history in order, the signals
    sent to it (in the order sent) and its steps' tasks (oldest first)."""

    task: Task
    history: list[HistoryEntry] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    steps: list[Task] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.to_dict(),
            "history": [entry.to_dict() for entry in self.history],
            "signals": [signal.to_dict() for signal in self.signals],
            "steps": [step.to_dict() for step in self.steps],
        }


class WorkflowEnded(TrellisError):
    """A signal for a workflow that has ended: nothing will receive it."""


class NotAWorkflow(TrellisError):
    """A workflow operation named a task that is not a workflow."""


class NonDeterminism(TrellisError):
    """A replay asked for something other than the history holds at that place: the
    workflow's code changed, or it branched on a value it did not record."""


class StepFailed(TrellisError):
    """A workflow's step failed for good (or was cancelled): raised where the workflow
    awaits it. ``error`` is the step's error, ``step`` its task id, ``name`` its type."""

    def __init__(self, name: str, step: str, error: TaskError) -> None:
        super().__init__(f"step {name!r} ({step}) failed: {error.type}: {error.message}")
        self.name = name
        self.step = step
        self.error = error


#: How a step's end shows in its workflow's history.
_STEP_OUTCOMES = {
    TaskStatus.COMPLETED: EntryOutcome.COMPLETED,
    TaskStatus.FAILED: EntryOutcome.FAILED,
    TaskStatus.DEAD: EntryOutcome.FAILED,
    TaskStatus.CANCELLED: EntryOutcome.FAILED,
}


def step_resolution(step: Task) -> tuple[EntryOutcome, Any, TaskError | None]:
    """What a step that ended writes into its history entry: outcome, value, error."""
    outcome = _STEP_OUTCOMES[step.status]
    if outcome is EntryOutcome.COMPLETED:
        return outcome, step.result, None
    error = step.error
    if step.status is TaskStatus.CANCELLED or error is None:
        error = TaskError("Cancelled", "the step was cancelled")
    return outcome, None, error


def check_signalled(task: Task) -> None:
    """Raise :class:`WorkflowEnded` unless ``task`` may still receive a signal."""
    if task.status in TERMINAL:
        raise WorkflowEnded(
            f"workflow {task.id} is {task.status.value}: it can no longer receive signals"
        )


def awaits_signal(history: Iterable[HistoryEntry], name: str) -> bool:
    """Whether a workflow with ``history`` waits for a signal called ``name`` now (a wait
    for it not yet resolved): only such a signal wakes it; any other is kept until the
    workflow asks for it."""
    return any(
        entry.kind is EntryKind.SIGNAL and entry.name == name and entry.outcome is None
        for entry in history
    )


def stirs(
    continuation: Continuation,
    history: dict[int, HistoryEntry],
    waiting_signals: list[SignalRecord],
    wake_at: float,
    now: float,
) -> str | None:
    """Why a workflow whose continuation just ended waiting must be queued again at
    once (None: it may wait). Something it waits for may have happened while it ran: a
    step ended, a signal came, or its timer is due already. ``history``: its entries as
    stored now; ``waiting_signals``: its signals not yet received."""
    for seq in continuation.awaiting_steps:
        entry = history.get(seq)
        if entry is not None and entry.outcome is not None:
            return "a step it waits for ended"
    names = set(continuation.awaiting_signals)
    if any(signal.name in names for signal in waiting_signals):
        return "a signal it waits for came"
    if wake_at <= now:
        return "its timer is due"
    return None
