"""What a workflow function gets as ``wf``: steps, sleeps, signals and recorded values,
answered from its history when they are there, collected as commands when not.

A run of the function is a *replay*: everything it asks for takes the next sequence
number, in call order (so ``wf.gather(wf.run(a), wf.run(b))`` takes two). What the
history holds at that number answers at once; what it does not hold is recorded, and
awaiting something not resolved yet ends the run (a private ``BaseException``, so that
``except Exception`` in the workflow cannot swallow it). The runner then writes what
the run recorded and started, and the workflow waits, holding no worker, until one of
the things it waits for happens; then it is replayed from the start.
"""

from __future__ import annotations

import math
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Generator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import rules
from .contracts import TaskHandle, task_name
from .errors import ValidationError
from .lifecycle import NewTask
from .workflows import (
    Continuation,
    EntryKind,
    EntryOutcome,
    HistoryEntry,
    NonDeterminism,
    Resolution,
    SignalRecord,
    StepFailed,
    WorkflowState,
)

if TYPE_CHECKING:
    from .rules import TaskTypes

T = TypeVar("T")
R = TypeVar("R")

#: Longest a workflow may sleep or wait for a signal, in seconds (ten years).
MAX_WAIT = 10 * 365 * 86400.0


class Suspended(BaseException):
    """Ends a replay that awaits something not resolved yet. (A ``BaseException``: a
    workflow's ``except Exception`` does not catch it.)"""


class Pending(Awaitable[T]):
    """What ``wf.run``, ``wf.sleep`` and ``wf.wait_signal`` return: its place in the
    history is taken when it is made; awaiting it gives its value (or raises the step's
    :class:`~trellis_actors.workflows.StepFailed`), or suspends the workflow."""

    __slots__ = ("_context", "done", "error", "seq", "value")

    def __init__(self, context: WorkflowContext, seq: int) -> None:
        self._context = context
        self.seq = seq
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def resolve(self, value: Any = None, error: BaseException | None = None) -> Pending[T]:
        self.done, self.value, self.error = True, value, error
        return self

    def result(self) -> T:
        if not self.done:
            raise self._context.suspend()
        if self.error is not None:
            raise self.error
        value: T = self.value
        return value

    def __await__(self) -> Generator[Any, None, T]:
        return self.result()
        yield  # a generator: awaitable, and it never gives control away

    def __repr__(self) -> str:
        return f"<workflow command #{self.seq} {'done' if self.done else 'pending'}>"


class WorkflowContext:
    """A workflow's run against its history (see the module docstring).

    Everything a workflow does that is not pure computation goes through it: steps are
    tasks (``wf.run``), time passes with ``wf.sleep``, news comes with ``wf.wait_signal``,
    and ``wf.now()``, ``wf.random()`` and ``wf.uuid()`` give values recorded the first
    time, so that every replay takes the same branches.
    """

    def __init__(self, state: WorkflowState, now: float, types: TaskTypes) -> None:
        self.workflow_id = state.task.id
        self._now = now
        self._types = types
        self._history = {entry.seq: entry for entry in state.history}
        self._signals = [s for s in state.signals if s.consumed_by is None]
        self._seq = 0
        self._entries: list[HistoryEntry] = []
        self._steps: list[NewTask] = []
        self._resolved: list[Resolution] = []
        self._consumed: list[tuple[int, int]] = []
        self._awaiting_steps: list[int] = []
        self._awaiting_signals: list[str] = []
        self.wake_at = math.inf  # the earliest timer of what it waits for
        self.suspended = False  # a Suspended was raised: the run ends waiting, whatever
        self.broken: NonDeterminism | None = None  # what the history disagreed with

    # -- what the runner reads -----------------------------------------------------------
    def continuation(self) -> Continuation:
        """What this run recorded and started, to write with its outcome."""
        return Continuation(
            entries=tuple(self._entries),
            steps=tuple(self._steps),
            resolved=tuple(self._resolved),
            consumed=tuple(self._consumed),
            awaiting_steps=tuple(self._awaiting_steps),
            awaiting_signals=tuple(dict.fromkeys(self._awaiting_signals)),
        )

    def suspend(self) -> Suspended:
        self.suspended = True
        return Suspended()

    # -- the history ---------------------------------------------------------------------
    def _take(self, kind: EntryKind, name: str | None) -> tuple[int, HistoryEntry | None]:
        """The next sequence number, and what the history holds there (checked to be
        what the code asks for now)."""
        self._seq += 1
        seq = self._seq
        entry = self._history.get(seq)
        if entry is not None and (entry.kind is not kind or entry.name != name):
            recorded = _describe(entry.kind, entry.name)
            asked = _describe(kind, name)
            self.broken = NonDeterminism(
                f"workflow {self.workflow_id} is not deterministic: its history has "
                f"{recorded} at position {seq}, the code asked for {asked}; a workflow "
                "must ask for the same things in the same order on every replay (record "
                "changing values with wf.now(), wf.random() and wf.uuid())"
            )
            raise self.broken
        return seq, entry

    def _record(self, seq: int, kind: EntryKind, **fields: Any) -> HistoryEntry:
        entry = HistoryEntry(self.workflow_id, seq, kind, recorded_at=self._now, **fields)
        self._entries.append(entry)
        return entry

    def _waits_until(self, at: float | None) -> None:
        if at is not None:
            self.wake_at = min(self.wake_at, at)

    # -- steps ---------------------------------------------------------------------------
    @overload
    def run(self, task: TaskHandle[Any, R], payload: Any = None, **options: Any) -> Pending[R]: ...
    @overload
    def run(self, task: str, payload: Any = None, **options: Any) -> Pending[Any]: ...
    def run(self, task: TaskHandle[Any, Any] | str, payload: Any = None, **options: Any) -> Any:
        """Run a step: a task of ``task``'s type with ``payload`` (checked against its
        contract), its own retries, timeout and dead-lettering; ``options`` as
        ``rt.submit`` takes them (``queue``, ``priority``, ``max_attempts``, ``timeout``).
        Await what it returns for the step's result; a step that fails for good (or is
        cancelled) raises :class:`~trellis_actors.StepFailed` there."""
        name = task_name(task)
        seq, entry = self._take(EntryKind.STEP, name)
        pending: Pending[Any] = Pending(self, seq)
        if entry is None:
            if "delay" in options or "run_at" in options or "idempotency_key" in options:
                field = next(k for k in ("delay", "run_at", "idempotency_key") if k in options)
                raise ValidationError(
                    f"a step takes no {field}; use wf.sleep() to wait before a step",
                    field=field,
                )
            new = rules.new_task(self._types, task, payload, self._now, **options)
            new.parent_id = self.workflow_id
            self._steps.append(new)
            self._record(seq, EntryKind.STEP, name=name)
            self._awaiting_steps.append(seq)
            return pending
        if entry.outcome is None:
            self._awaiting_steps.append(seq)
            return pending
        if entry.outcome is EntryOutcome.COMPLETED:
            value = entry.value
            if isinstance(task, TaskHandle) and value is not None:
                value = task.contract.read(value)
            return pending.resolve(value)
        assert entry.error is not None
        return pending.resolve(error=StepFailed(name, entry.step_id or "", entry.error))

    async def gather(self, *pending: Pending[Any]) -> list[Any]:
        """Wait for all of ``pending`` (each from ``wf.run``, ``wf.sleep`` or
        ``wf.wait_signal``, all already started: fan-out), and give their values in
        order (fan-in). When some fail, it waits for the rest all the same, then raises
        the first failure in argument order, so that every replay raises the same."""
        for item in pending:
            if not isinstance(item, Pending):
                raise TypeError(
                    "wf.gather() takes what wf.run(), wf.sleep() and wf.wait_signal() "
                    f"return, not {type(item).__name__}"
                )
        if not all(item.done for item in pending):
            raise self.suspend()
        for item in pending:
            if item.error is not None:
                raise item.error
        return [item.value for item in pending]

    # -- time and signals ----------------------------------------------------------------
    def sleep(self, duration: timedelta | float) -> Pending[None]:
        """Wait ``duration`` (a timedelta or seconds), durably: no worker is held, and a
        restart does not start the wait again."""
        seconds = _seconds(duration, "duration")
        seq, entry = self._take(EntryKind.SLEEP, None)
        pending: Pending[None] = Pending(self, seq)
        if entry is None:
            wake_at = self._now + seconds
            if seconds <= 0:
                self._record(seq, EntryKind.SLEEP, wake_at=wake_at, outcome=EntryOutcome.ELAPSED)
                return pending.resolve()
            self._record(seq, EntryKind.SLEEP, wake_at=wake_at)
            self._waits_until(wake_at)
            return pending
        if entry.outcome is not None:
            return pending.resolve()
        if entry.wake_at is None or entry.wake_at <= self._now:
            self._resolved.append(Resolution(seq, EntryOutcome.ELAPSED))
            return pending.resolve()
        self._waits_until(entry.wake_at)
        return pending

    def wait_signal(self, name: str, timeout: timedelta | float | None = None) -> Pending[Any]:
        """Wait for the next signal called ``name`` (sent with ``rt.signal``; one sent
        before this wait is kept for it) and give its payload; ``None`` when ``timeout``
        passes first. Signals of one name are received in the order sent, each once."""
        name = rules.check_text(name, "name")
        seconds = None if timeout is None else _seconds(timeout, "timeout")
        seq, entry = self._take(EntryKind.SIGNAL, name)
        pending: Pending[Any] = Pending(self, seq)
        if entry is None:
            deadline = None if seconds is None else self._now + seconds
            entry = self._record(seq, EntryKind.SIGNAL, name=name, wake_at=deadline)
            new = True
        elif entry.outcome is EntryOutcome.RECEIVED:
            return pending.resolve(entry.value)
        elif entry.outcome is not None:
            return pending.resolve(None)
        else:
            new = False
        signal = self._next_signal(name)
        outcome: EntryOutcome | None = None
        if signal is not None:
            self._consumed.append((signal.id, seq))
            outcome, value = EntryOutcome.RECEIVED, signal.payload
        elif entry.wake_at is not None and entry.wake_at <= self._now:
            outcome, value = EntryOutcome.TIMED_OUT, None
        if outcome is None:
            self._awaiting_signals.append(name)
            self._waits_until(entry.wake_at)
            return pending
        if new:
            self._entries[-1] = HistoryEntry(
                self.workflow_id,
                seq,
                EntryKind.SIGNAL,
                name=name,
                wake_at=entry.wake_at,
                value=value,
                outcome=outcome,
                recorded_at=self._now,
                resolved_at=self._now,
            )
        else:
            self._resolved.append(Resolution(seq, outcome, value))
        return pending.resolve(value)

    def _next_signal(self, name: str) -> SignalRecord | None:
        for index, signal in enumerate(self._signals):
            if signal.name == name:
                del self._signals[index]
                return signal
        return None

    # -- recorded values -----------------------------------------------------------------
    def _recorded(self, kind: EntryKind, make: Any) -> Any:
        seq, entry = self._take(kind, None)
        if entry is not None:
            return entry.value
        value = make()
        self._record(seq, kind, value=value, outcome=EntryOutcome.RECORDED, resolved_at=self._now)
        return value

    def now(self) -> datetime:
        """The time (UTC) when this point of the workflow was first reached."""
        return datetime.fromtimestamp(self._recorded(EntryKind.NOW, lambda: self._now), UTC)

    def random(self) -> float:
        """A random float in [0, 1), the same on every replay."""
        value: float = self._recorded(EntryKind.RANDOM, _random.random)
        return value

    def uuid(self) -> _uuid.UUID:
        """A random UUID (version 4), the same on every replay."""
        return _uuid.UUID(self._recorded(EntryKind.UUID, lambda: str(_uuid.uuid4())))


def _describe(kind: EntryKind, name: str | None) -> str:
    return kind.value if name is None else f"{kind.value} {name!r}"


def _seconds(value: timedelta | float, field: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationError(f"{field} must be a timedelta or seconds", field=field)
    if not -math.inf < seconds <= MAX_WAIT:  # NaN fails this too
        raise ValidationError(
            f"{field} must be a number of seconds up to {MAX_WAIT:.0f} (ten years)", field=field
        )
    return float(seconds)
