"""Lifecycle transitions as a stream, for subscribers of a runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from ..lifecycle import Transition


class EventStream:
    """Lifecycle transitions, one at a time, as the store actor publishes them."""

    def __init__(self, receive: trio.MemoryReceiveChannel[tuple[Transition, ...]]) -> None:
        self._receive = receive
        self._pending: list[Transition] = []

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Transition:
        while not self._pending:
            try:
                self._pending = list(await self._receive.receive())
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
        return self._pending.pop(0)

    async def batches(self) -> AsyncIterator[tuple[Transition, ...]]:
        """The raw batches (one per store commit), for consumers that aggregate."""
        async for batch in self._receive:
            yield batch
