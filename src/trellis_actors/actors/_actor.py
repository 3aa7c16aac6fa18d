"""The actor base class and child specs."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import trio

from ..errors import ActorCrashed, ActorStopped
from ._mailbox import Mailbox, Ref, Request
from ._timer import Timer

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
    ``assert_never`` for the rest; the kernel's loop (:meth:`run`) feeds it every message
    in turn. Periodic work is a :meth:`timer` that sends the actor a message. Set-up goes
    in :meth:`on_start`, last words (flushing what is buffered) in :meth:`on_stop`, and
    work the actor does beside its mailbox in :meth:`background`.
    """

    kind: ClassVar[str] = "actor"

    def __init__(self) -> None:
        self._spec: ChildSpec | None = None
        self.stop_requested = trio.Event()
        # This incarnation's own receive handle on the mailbox: closing it wakes a receive()
        # waiting on it, and nothing else (the mailbox and its messages stay for the next).
        self._inbox: trio.MemoryReceiveChannel[M] | None = None
        self._timers: list[Timer[M]] = []
        #: Which start of its slot this is (1, 2, … as its supervisor restarts it; 0 alone).
        self.incarnation = 0

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
        """The next message, or the ``_STOP`` sentinel once a stop was requested (use
        :meth:`messages`, which hides the sentinel)."""
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

    def leftovers(self) -> Iterator[M]:
        """The messages waiting now, taken without waiting: for an actor's last words
        (``on_stop``), when its loop has ended with mail still in the box."""
        mailbox = self.mailbox
        while True:
            try:
                yield mailbox.get_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return

    def messages(self) -> AsyncIterator[M]:
        """``async for msg in self.messages():`` every message until a stop is requested."""
        return _Messages(self)

    def batches(self, limit: int) -> AsyncIterator[list[M]]:
        """Like :meth:`messages`, but each waiting message at once, up to ``limit``."""
        return _Batches(self, limit)

    def timer(self, message: Callable[[], M], *, every: float | None = None) -> Timer[M]:
        """A timer that sends this actor ``message()``: every ``every`` seconds, or when
        armed (:meth:`Timer.at`). The kernel's loop runs it while the actor runs."""
        timer = Timer(lambda msg: self.ref.tell_nowait(msg), message, every=every)
        self._timers.append(timer)
        return timer

    # -- the loop -----------------------------------------------------------------------
    async def on_start(self) -> None:
        """Runs before the actor reports itself started; override to set up."""

    async def on_stop(self) -> None:
        """Runs once the loop has ended on a stop request (not after a crash)."""

    async def background(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Work beside the mailbox, started before the actor reports itself started and
        cancelled when it stops; override it (and call ``task_status.started()``)."""
        task_status.started()

    async def handle(self, msg: M) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    async def run(self, *, task_status: trio.TaskStatus[Ref[M]] = trio.TASK_STATUS_IGNORED) -> None:
        await self.on_start()
        try:
            with one_error():
                async with trio.open_nursery() as nursery:
                    if type(self).background is not Actor.background:
                        await nursery.start(self.background)
                    for timer in self._timers:
                        nursery.start_soon(timer.run)
                    task_status.started(self.ref)
                    async for msg in self.messages():
                        try:
                            await self.handle(msg)
                        except BaseException as exc:
                            if isinstance(msg, Request) and not msg.reply.is_set:
                                msg.reply.fail(self._failure(msg, exc))
                            raise
                    await self.on_stop()
                    nursery.cancel_scope.cancel()
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

    def details(self) -> dict[str, Any] | None:
        """What this actor tells of itself in its snapshot (``/debug``); JSON values."""
        return None


@contextmanager
def one_error() -> Iterator[None]:
    """Around an actor's nursery: what escapes it comes wrapped in an exception group; a
    crash is one error, so the supervisor sees (and logs) that error itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group.exceptions[0].__cause__
        raise


class _Messages(Generic[M]):
    """The async iterator of :meth:`Actor.messages` (a class: no async generator to
    finalise when a loop breaks early)."""

    __slots__ = ("_actor",)

    def __init__(self, actor: Actor[M]) -> None:
        self._actor = actor

    def __aiter__(self) -> _Messages[M]:
        return self

    async def __anext__(self) -> M:
        msg = await self._actor.receive()
        if msg is _STOP:
            raise StopAsyncIteration
        return msg  # type: ignore[return-value]  # not _STOP, so an M


class _Batches(Generic[M]):
    __slots__ = ("_actor", "_limit")

    def __init__(self, actor: Actor[M], limit: int) -> None:
        self._actor = actor
        self._limit = limit

    def __aiter__(self) -> _Batches[M]:
        return self

    async def __anext__(self) -> list[M]:
        first = await self._actor.receive()
        if first is _STOP:
            raise StopAsyncIteration
        batch: list[M] = [first]  # type: ignore[list-item]  # not _STOP, so an M
        for msg in self._actor.leftovers():
            batch.append(msg)
            if len(batch) >= self._limit:
                break
        return batch
