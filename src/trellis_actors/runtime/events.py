"""Lifecycle transitions as a stream, for subscribers of a runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from ..lifecycle import Recorded, Transition
from .messages import FeedBatch, Published, Unsubscribed

#: Batches of transitions (one per store commit) a subscriber may fall behind by default
#: before the store drops it.
DEFAULT_BUFFER = 1000

#: Batches read from the store's log (each up to a page of events) that may wait unread
#: by a follower; past it, the feed waits for room (what waits stays in the store).
FOLLOW_BUFFER = 8


class EventStream:
    """Lifecycle transitions, one at a time, as the store actor publishes them.

    A subscriber that falls a whole buffer behind is dropped by the store rather than
    slowing it down or growing without end: the stream then ends, and :attr:`dropped`
    says why (None while it lasts, and when it ended otherwise).
    """

    def __init__(self, receive: trio.MemoryReceiveChannel[Published]) -> None:
        self._receive = receive
        self._pending: list[Transition] = []
        self.dropped: str | None = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Transition:
        while not self._pending:
            try:
                got = await self._receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            if isinstance(got, Unsubscribed):
                self.dropped = got.reason
                raise StopAsyncIteration
            self._pending = list(got)
        return self._pending.pop(0)

    async def batches(self) -> AsyncIterator[tuple[Transition, ...]]:
        """The raw batches (one per store commit), for consumers that aggregate."""
        async for got in self._receive:
            if isinstance(got, Unsubscribed):
                self.dropped = got.reason
                return
            yield got


class FeedStream:
    """Every node's transitions as the store recorded them, one at a time, oldest first,
    each with its event id (see :meth:`Runtime.follow`).

    :attr:`last_id` is the id of the last event taken (before any, where the stream
    started): follow again after it to go on with exactly what came next. The stream
    ends when the runtime stops.
    """

    def __init__(self, receive: trio.MemoryReceiveChannel[FeedBatch], start: int) -> None:
        self._receive = receive
        self._pending: list[Recorded] = []
        self._next = 0
        self.last_id = start

    def __aiter__(self) -> FeedStream:
        return self

    async def __anext__(self) -> Recorded:
        if self._next >= len(self._pending):
            try:
                self._pending = list(await self._receive.receive())
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            self._next = 0
        recorded = self._pending[self._next]
        self._next += 1
        self.last_id = recorded.id
        return recorded
