"""Mailboxes, requests with replies, and refs: how anything talks to an actor."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import trio

from ..errors import ActorStopped, AskTimeout, MailboxFull

M = TypeVar("M")
R = TypeVar("R")

#: How long ``ask`` waits for a reply unless told otherwise.
DEFAULT_ASK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A point-in-time view of one mailbox."""

    length: int
    capacity: float
    sent: int
    handled: int
    blocked_seconds: float


class Reply(Generic[R]):
    """A one-shot reply slot carried by a :class:`Request`."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: R | None = None
        self._error: BaseException | None = None

    @property
    def is_set(self) -> bool:
        return self._done.is_set()

    def send(self, value: R) -> None:
        """Answer the request. Only the first answer counts."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        """Answer the request with an error, raised in the asker."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> R:
        await self._done.wait()
        return self.result()

    def result(self) -> R:
        """The answer of a reply that :attr:`is_set` (raises the error it failed with)."""
        if not self._done.is_set():
            raise RuntimeError("the request has not been answered yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set together with _done


@dataclass(frozen=True, slots=True)
class Request(Generic[R]):
    """Base of every message that expects an answer of type ``R``.

    Subclasses are frozen dataclasses; the ``reply`` slot is made per message.
    """

    reply: Reply[R] = field(default_factory=Reply, kw_only=True, repr=False, compare=False)


class Mailbox(Generic[M]):
    """A bounded trio memory channel with statistics.

    A mailbox belongs to a child slot, not to one incarnation of an actor: it outlives
    restarts, so messages waiting in it are handled by the next incarnation.
    """

    __slots__ = (
        "_blocked",
        "_handled",
        "_receive",
        "_send",
        "_sent",
        "busy",
        "capacity",
        "last_alive",
        "waiting",
    )

    def __init__(self, capacity: float = 128) -> None:
        if capacity != math.inf and (capacity < 0 or int(capacity) != capacity):
            raise ValueError(f"mailbox capacity must be a whole number >= 0, got {capacity}")
        self.capacity = capacity
        self._send, self._receive = trio.open_memory_channel[M](capacity)
        self._sent = 0
        self._handled = 0
        self._blocked = 0.0
        #: trio time of the last liveness signal (a message received or ``Actor.alive``).
        self.last_alive = 0.0
        #: True while the owning actor waits for a message (idle, so not hung).
        self.waiting = False
        #: True while the owner works beside its loop (a worker's handler): the idle
        #: watchdog then watches its liveness even while the loop waits for mail.
        self.busy = False

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            length=self._send.statistics().current_buffer_used,
            capacity=self.capacity,
            sent=self._sent,
            handled=self._handled,
            blocked_seconds=self._blocked,
        )

    def __len__(self) -> int:
        return self._send.statistics().current_buffer_used

    @property
    def closed(self) -> bool:
        return self._send._closed  # trio exposes no public flag

    async def put(self, msg: M) -> None:
        # Like trio's own send: a put cancelled before it starts delivers nothing, and one
        # that delivered is not cancelled afterwards.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._send.send_nowait(msg)
        except trio.WouldBlock:
            started = trio.current_time()
            try:
                await self._send.send(msg)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise ActorStopped("the actor's mailbox is closed") from None
            finally:
                self._blocked += trio.current_time() - started
            self._sent += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped("the actor's mailbox is closed") from None
        else:
            self._sent += 1
            await trio.lowlevel.cancel_shielded_checkpoint()

    def put_nowait(self, msg: M) -> None:
        try:
            self._send.send_nowait(msg)
        except trio.WouldBlock:
            raise MailboxFull(f"mailbox is full ({self.capacity} messages)") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped("the actor's mailbox is closed") from None
        self._sent += 1

    def inbox(self) -> trio.MemoryReceiveChannel[M]:
        """A receive handle for one reader; closing it wakes that reader only.

        Messages stay in the mailbox: its own handle keeps the channel open.
        """
        return self._receive.clone()

    def took_one(self) -> None:
        """Count a message taken through an :meth:`inbox`, and mark the reader alive."""
        self._handled += 1
        self.last_alive = trio.current_time()

    def get_nowait(self) -> M:
        """Take a waiting message (raises ``trio.WouldBlock`` when there is none)."""
        msg = self._receive.receive_nowait()
        self._handled += 1
        return msg

    async def get(self) -> M:
        msg = await self._receive.receive()
        self._handled += 1
        return msg

    def close(self) -> None:
        """Close for good: later sends raise ActorStopped; waiting requests are failed."""
        self._send.close()
        while True:
            try:
                msg = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(msg, Request):
                msg.reply.fail(ActorStopped("the actor stopped before answering"))
        self._receive.close()


class Ref(Generic[M]):
    """A stable address of an actor slot.

    A ref stays valid across restarts of the actor behind it: it points at the mailbox,
    which the slot keeps, not at one incarnation of the actor.
    """

    __slots__ = ("_mailbox", "name")

    def __init__(self, name: str, mailbox: Mailbox[M]) -> None:
        self.name = name
        self._mailbox = mailbox

    def __repr__(self) -> str:
        return f"<Ref {self.name}>"

    async def tell(self, msg: M) -> None:
        """Send ``msg``; waits while the mailbox is full (backpressure)."""
        await self._mailbox.put(msg)

    def tell_nowait(self, msg: M) -> None:
        """Send ``msg`` or raise :class:`MailboxFull` at once."""
        self._mailbox.put_nowait(msg)

    async def ask(self, msg: Request[R], timeout: float | None = DEFAULT_ASK_TIMEOUT) -> R:
        """Send a request and wait for its reply, at most ``timeout`` seconds."""
        reply = msg.reply
        # The timeout covers the whole ask, waiting for room in a full mailbox included.
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._mailbox.put_nowait(msg)  # type: ignore[arg-type]  # a Request is one of M
        except MailboxFull:
            with trio.CancelScope(deadline=deadline):
                await self._mailbox.put(msg)  # type: ignore[arg-type]
                await reply._done.wait()
        else:
            if timeout is None:  # nothing to arm: wait for the answer itself
                await reply._done.wait()
                return reply.result()
            # Most answers come within a scheduling round or two, and arming a deadline
            # costs more than that: look twice before arming it.
            for _ in range(2):
                await trio.lowlevel.cancel_shielded_checkpoint()
                if reply.is_set:
                    return reply.result()
            with trio.CancelScope(deadline=deadline):
                await reply._done.wait()
        if reply.is_set:  # answered, even if the deadline passed at the same moment
            return reply.result()
        raise AskTimeout(
            f"{self.name} did not answer {type(msg).__name__} within {timeout}s; "
            "the actor may be overloaded or hung (see its mailbox statistics)"
        )

    def statistics(self) -> MailboxStatistics:
        return self._mailbox.statistics()

    @property
    def mailbox(self) -> Mailbox[Any]:
        return self._mailbox
