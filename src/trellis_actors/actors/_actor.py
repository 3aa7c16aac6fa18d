"""The actor base class and child specs."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import trio

from ..errors import ActorCrashed, ActorStopped
from ._mailbox import Mailbox, Ref, Request

if TYPE_CHECKING:
    from ._snapshot import ActorSnapshot

M = TypeVar("M")


class RestartType(StrEnum):
    """When a supervisor restarts a child that exited (OTP restart types)."""

    PERMANENT = "permanent"  #: always
    TRANSIENT = "transient"  #: only after a crash, not after a clean exit
    TEMPORARY = "temporary"  #: never; the child is forgotten when it exits


class ActorState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing-off"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class ChildSpec:
    """A supervised slot: how to make the actor, and the mailbox that outlives it.

    The slot's :attr:`ref` is usable as soon as the spec exists, before the actor starts,
    so actors can be wired to each other up front. Reusing the same specs when a supervisor
    is itself restarted keeps every ref valid across the restart.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Actor[Any]],
        *,
        restart: RestartType = RestartType.PERMANENT,
        shutdown_timeout: float = 5.0,
        idle_timeout: float | None = None,
        mailbox_size: float = 128,
    ) -> None:
        if not name:
            raise ValueError("a child needs a non-empty name")
        if shutdown_timeout < 0:
            raise ValueError("shutdown_timeout must be >= 0")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 (or None to turn the watchdog off)")
        self.name = name
        self.factory = factory
        self.restart = RestartType(restart)
        self.shutdown_timeout = shutdown_timeout
        self.idle_timeout = idle_timeout
        self.mailbox: Mailbox[Any] = Mailbox(mailbox_size)
        self.ref: Ref[Any] = Ref(name, self.mailbox)

    def __repr__(self) -> str:
        return f"<ChildSpec {self.name} {self.restart.value}>"


_STOP: Final = object()


class Actor(Generic[M]):
    """One actor: private state, a mailbox, and a message loop.

    Subclasses implement :meth:`handle` with ``match`` over their message union and
    ``assert_never`` for the rest. Long-running actors that do not wait on their mailbox
    call :meth:`alive` to tell the idle watchdog they are not hung, and watch
    :attr:`stop_requested` to finish gracefully.
    """

    kind: ClassVar[str] = "actor"

    def __init__(self) -> None:
        self._spec: ChildSpec | None = None
        self.stop_requested = trio.Event()
        # This incarnation's own receive handle on the mailbox: closing it wakes a receive()
        # waiting on it, and nothing else (the mailbox and its messages stay for the next).
        self._inbox: trio.MemoryReceiveChannel[M] | None = None

    # -- wiring -------------------------------------------------------------------------
    def bind(self, spec: ChildSpec) -> None:
        """Attach this incarnation to its slot (done by the supervisor before ``run``)."""
        self._spec = spec

    def _ensure_spec(self) -> ChildSpec:
        if self._spec is None:
            # Run without a supervisor: the actor gets a private slot of its own.
            self._spec = ChildSpec(self.kind, lambda: self, mailbox_size=math.inf)
        return self._spec

    @property
    def spec(self) -> ChildSpec:
        return self._ensure_spec()

    @property
    def name(self) -> str:
        return self._ensure_spec().name

    @property
    def ref(self) -> Ref[M]:
        return self._ensure_spec().ref

    @property
    def mailbox(self) -> Mailbox[M]:
        return self._ensure_spec().mailbox

    # -- liveness and stopping ------------------------------------------------------------
    def alive(self) -> None:
        """Signal liveness to the idle watchdog."""
        self.mailbox.last_alive = trio.current_time()

    def request_stop(self) -> None:
        """Ask the actor to finish: its loop ends after the message it is handling."""
        self.stop_requested.set()
        if self._inbox is not None:
            self._inbox.close()

    async def receive(self) -> M | object:
        """The next message, or the ``_STOP`` sentinel once a stop was requested."""
        if self.stop_requested.is_set():
            return _STOP
        mailbox = self.mailbox
        try:
            inbox = self._inbox
            if inbox is None:
                inbox = self._inbox = mailbox.inbox()
            try:
                msg = inbox.receive_nowait()
            except trio.WouldBlock:
                # Waiting costs no cancel scope: request_stop closes the inbox instead.
                mailbox.waiting = True
                try:
                    msg = await inbox.receive()
                finally:
                    mailbox.waiting = False
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return _STOP
        mailbox.took_one()
        return msg

    # -- the loop -----------------------------------------------------------------------
    async def on_start(self) -> None:
        """Runs before the actor reports itself started; override to set up."""

    async def handle(self, msg: M) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    async def run(self, *, task_status: trio.TaskStatus[Ref[M]] = trio.TASK_STATUS_IGNORED) -> None:
        await self.on_start()
        task_status.started(self.ref)
        try:
            while (msg := await self.receive()) is not _STOP:
                try:
                    await self.handle(msg)  # type: ignore[arg-type]  # not _STOP, so an M
                except BaseException as exc:
                    if isinstance(msg, Request) and not msg.reply.is_set:
                        msg.reply.fail(self._failure(msg, exc))
                    raise
        finally:
            if self._inbox is not None:
                self._inbox.close()

    def _failure(self, msg: object, exc: BaseException) -> Exception:
        """The error an asker gets when the request it waits on ends in ``exc``."""
        if isinstance(exc, Exception):
            crashed = ActorCrashed(f"{self.name} crashed handling {type(msg).__name__}")
            crashed.__cause__ = exc
            return crashed
        return ActorStopped(f"{self.name} stopped before answering")

    def child_snapshots(self) -> tuple[ActorSnapshot, ...]:
        """Snapshots of this actor's children (supervisors have some)."""
        return ()
