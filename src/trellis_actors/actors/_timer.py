"""Timers: periodic or one-off wake-ups delivered to an actor as messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

from ..errors import ActorStopped, MailboxFull

M = TypeVar("M")


class Timer(Generic[M]):
    """Sends ``message()`` to an actor when its deadline (trio time) comes.

    An actor's periodic work is a message like any other: the timer only decides *when*
    it is sent, and the actor's loop handles it in turn with the rest of its mail. With
    ``every`` the timer re-arms itself after each send; without it, it sleeps until the
    actor calls :meth:`at`, :meth:`after` or :meth:`sooner`. A message that finds the
    mailbox full is not sent (the next one will be), so ticks never pile up.
    """

    __slots__ = ("_deadline", "_every", "_message", "_scope", "_send")

    def __init__(
        self,
        send: Callable[[M], None],
        message: Callable[[], M],
        *,
        every: float | None = None,
    ) -> None:
        if every is not None and every <= 0:
            raise ValueError("a timer's period must be > 0 seconds")
        self._send = send  # a tell_nowait
        self._message = message
        self._every = every
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None

    @property
    def deadline(self) -> float:
        return self._deadline

    def at(self, deadline: float) -> None:
        """Fire at ``deadline`` (trio time), instead of whenever it would have."""
        self._deadline = deadline
        if self._scope is not None:
            self._scope.deadline = deadline

    def after(self, seconds: float) -> None:
        self.at(trio.current_time() + seconds)

    def sooner(self, deadline: float) -> None:
        """Fire at ``deadline`` unless already due sooner."""
        if deadline < self._deadline:
            self.at(deadline)

    def stop(self) -> None:
        """Fire no more until armed again."""
        self.at(math.inf)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._every is not None and self._deadline == math.inf:
            self._deadline = trio.current_time() + self._every
        task_status.started()
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            if trio.current_time() < self._deadline:
                continue  # moved later while we slept
            self._deadline = math.inf if self._every is None else trio.current_time() + self._every
            try:
                self._send(self._message())
            except MailboxFull:
                pass  # the actor is busy; the next tick comes soon enough
            except ActorStopped:
                return
