"""OTP-style supervisors: strategies, restart types, backoff, intensity, watchdog."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

import structlog
import trio

from .._backoff import Backoff, compute_backoff
from ..errors import ActorHung, ActorStopped, ConfigurationError, MailboxFull, SupervisorEscalation
from ._actor import Actor, ActorState, ChildSpec, RestartType
from ._mailbox import Ref, Request
from ._registry import Register, Unregister
from ._snapshot import ActorSnapshot

log = structlog.get_logger("trellis.actors")


class Strategy(StrEnum):
    """Which children a supervisor restarts when one of them crashes."""

    ONE_FOR_ONE = "one_for_one"  #: only the crashed child
    ONE_FOR_ALL = "one_for_all"  #: every child
    REST_FOR_ONE = "rest_for_one"  #: the crashed child and those started after it


@dataclass(frozen=True, slots=True)
class Intensity:
    """At most ``max_restarts`` restarts within ``within`` seconds, or the supervisor fails."""

    max_restarts: int = 10
    within: float = 60.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within <= 0:
            raise ValueError("intensity needs max_restarts >= 0 and within > 0")


#: Restart backoff used unless a supervisor is given another.
DEFAULT_RESTART_BACKOFF = Backoff(initial=0.05, maximum=5.0, multiplier=2.0, jitter=0.2)


@dataclass(frozen=True, slots=True)
class AddChild(Request[Ref[Any]]):
    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class RemoveChild(Request[bool]):
    name: str


@dataclass(frozen=True, slots=True)
class WhichChildren(Request[tuple[str, ...]]):
    """Reply: the names of the children, in start order."""


SupervisorMsg = AddChild | RemoveChild | WhichChildren


@dataclass(slots=True)
class _Cell:
    """A supervisor's book-keeping for one child slot."""

    spec: ChildSpec
    state: ActorState = ActorState.STOPPED
    actor: Actor[Any] | None = None
    generation: int = 0
    scope: trio.CancelScope | None = None
    done: trio.Event | None = None
    stop_requested: bool = False
    hung: bool = False
    restarts: int = 0
    consecutive_failures: int = 0
    started_at: float = 0.0
    last_error: BaseException | None = None
    last_error_at: float | None = None
    next_restart_at: float | None = None


@dataclass(frozen=True, slots=True)
class _Exited:
    cell: _Cell
    generation: int
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class _RestartDue:
    cells: tuple[_Cell, ...]


@dataclass(frozen=True, slots=True)
class _Command:
    msg: SupervisorMsg


@dataclass(frozen=True, slots=True)
class _StopSelf:
    pass


_Event = _Exited | _RestartDue | _Command | _StopSelf


class _StartStatus:
    """Wraps a task status so a child that crashes before ``started`` still lets start return."""

    def __init__(self, inner: trio.TaskStatus[Any], on_started: Callable[[], None]) -> None:
        self._inner = inner
        self._on_started = on_started
        self.done = False

    def started(self, value: Any = None) -> None:
        if not self.done:
            self.done = True
            self._on_started()
            self._inner.started(value)


class Supervisor(Actor[SupervisorMsg]):
    """Starts children in order, restarts them by strategy, stops them in reverse order.

    A supervisor is itself an actor: it can be a child of another supervisor, and its
    mailbox takes :class:`AddChild`, :class:`RemoveChild` and :class:`WhichChildren`.
    """

    kind = "supervisor"

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity | None = None,
        backoff: Backoff = DEFAULT_RESTART_BACKOFF,
        reset_after: float = 30.0,
        registry: Ref[Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.strategy = Strategy(strategy)
        self.intensity = intensity or Intensity()
        self.backoff = backoff
        self.reset_after = reset_after
        self.registry = registry
        self._rng = rng or random.Random()
        self._cells: dict[str, _Cell] = {}
        for spec in children:
            if spec.name in self._cells:
                raise ConfigurationError(
                    f"two children are named {spec.name!r}; names must be unique"
                )
            self._cells[spec.name] = _Cell(spec)
        self._restart_times: deque[float] = deque()
        self._events_send, self._events = trio.open_memory_channel[_Event](math.inf)
        self._nursery: trio.Nursery | None = None
        self._watchdog_running = False

    # -- public, for the owner --------------------------------------------------------
    def snapshot(self) -> ActorSnapshot:
        """The whole tree below and including this supervisor."""
        return ActorSnapshot(
            name=self.name,
            kind=self.kind,
            state=ActorState.RUNNING.value if self._nursery else ActorState.STOPPED.value,
            restarts=0,
            last_error=None,
            last_error_at=None,
            mailbox=self.mailbox.statistics(),
            uptime=None,
            children=self.child_snapshots(),
            strategy=self.strategy.value,
        )

    def child_snapshots(self) -> tuple[ActorSnapshot, ...]:
        now = trio.current_time()
        return tuple(self._snapshot_cell(cell, now) for cell in self._cells.values())

    def request_stop(self) -> None:
        super().request_stop()
        self._events_send.send_nowait(_StopSelf())

    # -- the loop -----------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[Ref[SupervisorMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        escalation: SupervisorEscalation | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for cell in list(self._cells.values()):
                await self._start(cell)
            nursery.start_soon(self._forward_mailbox)
            self._ensure_watchdog()
            task_status.started(self.ref)
            while escalation is None:
                event = await self._events.receive()
                match event:
                    case _Exited():
                        escalation = await self._on_exit(event)
                    case _RestartDue(cells):
                        for cell in cells:
                            if (
                                self._cells.get(cell.spec.name) is cell
                                and cell.state == ActorState.BACKING_OFF
                            ):
                                await self._start(cell)
                    case _Command(msg):
                        await self._on_command(msg)
                    case _StopSelf():
                        break
                    case _:
                        assert_never(event)
            await self._stop_cells(list(self._cells.values()))
            nursery.cancel_scope.cancel()
        self._nursery = None
        if escalation is not None:
            raise escalation

    async def _forward_mailbox(self) -> None:
        async for msg in self.messages():
            self._events_send.send_nowait(_Command(msg))

    async def _on_command(self, msg: SupervisorMsg) -> None:
        match msg:
            case AddChild(spec):
                if spec.name in self._cells:
                    msg.reply.fail(
                        ConfigurationError(f"{self.name} already has a child named {spec.name!r}")
                    )
                    return
                cell = self._cells[spec.name] = _Cell(spec)
                await self._start(cell)
                self._ensure_watchdog()
                msg.reply.send(spec.ref)
            case RemoveChild(name):
                cell_or_none = self._cells.get(name)
                if cell_or_none is not None:
                    await self._stop_cells([cell_or_none])
                    self._forget(cell_or_none)
                msg.reply.send(cell_or_none is not None)
            case WhichChildren():
                msg.reply.send(tuple(self._cells))
            case _:
                assert_never(msg)

    # -- starting and stopping children ---------------------------------------------------
    async def _start(self, cell: _Cell) -> None:
        assert self._nursery is not None
        cell.generation += 1
        cell.state = ActorState.STARTING
        cell.done = trio.Event()
        cell.stop_requested = cell.hung = False
        cell.next_restart_at = None
        cell.started_at = trio.current_time()
        cell.spec.mailbox.last_alive = cell.started_at
        await self._nursery.start(self._child_main, cell, cell.generation)

    def _on_started(self, cell: _Cell) -> None:
        cell.state = ActorState.RUNNING
        self._notify_registry(
            Register(cell.spec.name, self._kind_of(cell), cell.spec.ref, cell.generation)
        )

    async def _child_main(
        self, cell: _Cell, generation: int, task_status: trio.TaskStatus[Any]
    ) -> None:
        status = _StartStatus(task_status, lambda: self._on_started(cell))
        error: BaseException | None = None
        assert cell.done is not None
        done = cell.done
        try:
            with trio.CancelScope() as scope:
                cell.scope = scope
                try:
                    actor = cell.spec.factory()
                    actor.bind(cell.spec)
                    actor.incarnation = generation
                    if isinstance(actor, Supervisor) and actor.registry is None:
                        actor.registry = self.registry
                    cell.actor = actor
                    await actor.run(task_status=status)
                except Exception as exc:
                    error = exc
        finally:
            # Set even when a cancellation from above ends the child, so that a stop
            # waiting for it does not sit out the shutdown timeout.
            done.set()
        if error is None and cell.hung and scope.cancelled_caught:
            error = ActorHung(
                f"{cell.spec.name} sent no liveness signal for {cell.spec.idle_timeout}s"
            )
        if not status.done:
            task_status.started()  # crashed while starting: let the start return
        self._events_send.send_nowait(_Exited(cell, generation, error))

    async def _stop_cells(self, cells: Sequence[_Cell]) -> None:
        """Stop children in reverse start order, each within its shutdown timeout."""
        for cell in reversed(cells):
            await self._stop_one(cell)

    async def _stop_one(self, cell: _Cell) -> None:
        if cell.done is None or cell.done.is_set() or cell.actor is None:
            if cell.state in (ActorState.BACKING_OFF, ActorState.STARTING, ActorState.RUNNING):
                cell.state = ActorState.STOPPED
            cell.next_restart_at = None
            return
        cell.stop_requested = True
        cell.state = ActorState.STOPPING
        # Teardown is shielded, so it completes even while we are being cancelled, and
        # bounded: past its shutdown timeout the child is cancelled outright.
        with trio.CancelScope(shield=True):
            cell.actor.request_stop()
            with trio.move_on_after(cell.spec.shutdown_timeout):
                await cell.done.wait()
            if not cell.done.is_set():
                assert cell.scope is not None
                cell.scope.cancel()
                with trio.move_on_after(cell.spec.shutdown_timeout):
                    await cell.done.wait()
        cell.state = ActorState.STOPPED
        self._notify_registry(Unregister(cell.spec.name, cell.spec.ref, cell.generation))

    def _forget(self, cell: _Cell) -> None:
        del self._cells[cell.spec.name]
        cell.spec.mailbox.close()

    # -- crashes and restarts -------------------------------------------------------------
    async def _on_exit(self, event: _Exited) -> SupervisorEscalation | None:
        cell, error = event.cell, event.error
        if event.generation != cell.generation or cell.stop_requested:
            return None  # an incarnation we stopped on purpose
        self._notify_registry(Unregister(cell.spec.name, cell.spec.ref, cell.generation))
        if error is not None:
            cell.last_error = error
            cell.last_error_at = time.time()
            log.warning(
                "actor crashed",
                actor=cell.spec.name,
                supervisor=self.name,
                error=repr(error),
                restarts=cell.restarts,
            )
        restart = cell.spec.restart
        if restart == RestartType.TEMPORARY or (restart == RestartType.TRANSIENT and error is None):
            cell.state = ActorState.STOPPED if error is None else ActorState.FAILED
            if restart == RestartType.TEMPORARY:
                self._forget(cell)
            return None

        now = trio.current_time()
        self._restart_times.append(now)
        while self._restart_times and self._restart_times[0] <= now - self.intensity.within:
            self._restart_times.popleft()
        if len(self._restart_times) > self.intensity.max_restarts:
            cell.state = ActorState.FAILED
            log.error(
                "supervisor gave up",
                actor=self.name,
                child=cell.spec.name,
                error=repr(error),
                max_restarts=self.intensity.max_restarts,
                within=self.intensity.within,
            )
            return SupervisorEscalation(self.name, cell.spec.name, error)

        if now - cell.started_at >= self.reset_after:
            cell.consecutive_failures = 0
        cell.consecutive_failures += 1
        delay = compute_backoff(self.backoff, cell.consecutive_failures, self._rng.random())

        order = list(self._cells.values())
        match self.strategy:
            case Strategy.ONE_FOR_ONE:
                affected = [cell]
            case Strategy.ONE_FOR_ALL:
                affected = order
            case Strategy.REST_FOR_ONE:
                affected = order[order.index(cell) :]
            case _:
                assert_never(self.strategy)
        await self._stop_cells([c for c in affected if c is not cell])
        for c in affected:
            if c.spec.restart == RestartType.TEMPORARY:
                self._forget(c)  # never restarted, not even alongside a sibling
        affected = [c for c in affected if c.spec.restart != RestartType.TEMPORARY]
        for c in affected:
            c.restarts += 1
            c.state = ActorState.BACKING_OFF
            c.next_restart_at = now + delay
        assert self._nursery is not None
        self._nursery.start_soon(self._restart_after, delay, tuple(affected))
        return None

    def _is_due(self, cell: _Cell) -> bool:
        """Still ours and still waiting (another restart may have started it already)."""
        return self._cells.get(cell.spec.name) is cell and cell.state == ActorState.BACKING_OFF

    async def _restart_after(self, delay: float, cells: tuple[_Cell, ...]) -> None:
        await trio.sleep(delay)
        self._events_send.send_nowait(_RestartDue(cells))

    # -- the idle watchdog -------------------------------------------------------------
    def _ensure_watchdog(self) -> None:
        if self._watchdog_running or self._nursery is None:
            return
        if any(cell.spec.idle_timeout for cell in self._cells.values()):
            self._watchdog_running = True
            self._nursery.start_soon(self._watchdog)

    async def _watchdog(self) -> None:
        while True:
            timeouts = [c.spec.idle_timeout for c in self._cells.values() if c.spec.idle_timeout]
            await trio.sleep(min(timeouts, default=1.0) / 4)
            now = trio.current_time()
            for cell in self._cells.values():
                limit = cell.spec.idle_timeout
                mailbox = cell.spec.mailbox
                if (
                    limit is not None
                    and cell.state == ActorState.RUNNING
                    and (mailbox.busy or not mailbox.waiting)
                    and now - mailbox.last_alive > limit
                    and cell.scope is not None
                ):
                    cell.hung = True
                    cell.scope.cancel()

    # -- helpers -----------------------------------------------------------------------
    def _notify_registry(self, msg: Register | Unregister) -> None:
        if self.registry is None or self.registry is self.ref:
            return
        try:
            self.registry.tell_nowait(msg)
        except (MailboxFull, ActorStopped):
            log.warning("registry did not take an update", actor=msg.name)

    @staticmethod
    def _kind_of(cell: _Cell) -> str:
        return cell.actor.kind if cell.actor is not None else "actor"

    def _snapshot_cell(self, cell: _Cell, now: float) -> ActorSnapshot:
        actor = cell.actor
        running = cell.state in (ActorState.RUNNING, ActorState.STOPPING)
        return ActorSnapshot(
            name=cell.spec.name,
            kind=self._kind_of(cell),
            state=cell.state.value,
            restarts=cell.restarts,
            last_error=None if cell.last_error is None else repr(cell.last_error),
            last_error_at=cell.last_error_at,
            mailbox=cell.spec.mailbox.statistics(),
            uptime=now - cell.started_at if running else None,
            children=actor.child_snapshots() if actor is not None and running else (),
            strategy=actor.strategy.value if isinstance(actor, Supervisor) else None,
            next_restart_in=(
                max(0.0, cell.next_restart_at - now) if cell.next_restart_at is not None else None
            ),
            details=actor.details() if actor is not None and running else None,
        )
