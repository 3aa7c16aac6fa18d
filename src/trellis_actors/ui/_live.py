"""Live pages: a server-sent event each time a task a page shows moves, so the page fetches
its fragment then instead of polling.

The events carry no task data (the page fetches what it shows, through the same scopes);
they only say *now*. A stream ends when the server stops (:meth:`Live.close`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio

from ..lifecycle import Recorded
from ..runtime.runtime import Runtime

#: Seconds between keep-alive comments (proxies close silent connections).
HEARTBEAT = 15.0
#: Milliseconds the browser waits before reconnecting a dropped stream.
RETRY_MS = 2000
CHANGED = b"event: changed\ndata: \n\n"


@dataclass(slots=True)
class Live:
    """The open streams of one app: ended together when the server stops."""

    closing: trio.Event = field(default_factory=trio.Event)
    waiting: set[trio.CancelScope] = field(default_factory=set)

    def close(self) -> None:
        self.closing.set()
        for scope in self.waiting:
            scope.cancel()

    async def changes(self, runtime: Runtime, task_id: str | None) -> AsyncIterator[bytes]:
        """``changed`` events for moves of ``task_id`` and of its steps when it is a
        workflow (of any task without one), on any node of the cluster: the moves are read
        from the store's event log (:meth:`Runtime.follow`), not this node's alone."""
        async with runtime.follow() as transitions:
            # Subscribed: a first "changed" has the page catch up on what moved since it
            # was rendered, or while a dropped stream was reconnecting.
            yield f"retry: {RETRY_MS}\n: subscribed\n\n".encode() + CHANGED
            while not self.closing.is_set():
                # A fresh scope per wait, never held across a yield.
                scope = trio.CancelScope(deadline=trio.current_time() + HEARTBEAT)
                moved: Recorded | None = None
                self.waiting.add(scope)
                try:
                    with scope:
                        moved = await transitions.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    self.waiting.discard(scope)
                if moved is None:
                    if not self.closing.is_set():
                        yield b": keep-alive\n\n"
                elif task_id is None or task_id in (moved.task.id, moved.task.parent_id):
                    yield CHANGED
