"""``GET /events``: lifecycle transitions as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from trellis_actors import Runtime
from trellis_actors.http._state import state_of
from trellis_actors.http.schemas import TransitionOut


class Stream:
    """Reads server-sent events from a test-client connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.buffer = b""

    async def chunk(self) -> bytes:
        return bytes(await self.connection.receive())

    async def event(self) -> dict[str, Any]:
        """The next ``transition`` event's data."""
        while b"\n\n" not in self.buffer:
            self.buffer += await self.chunk()
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        lines = block.decode().splitlines()
        if lines[0].startswith(":"):
            return await self.event()
        assert lines[0] == "event: transition"
        data: dict[str, Any] = json.loads(lines[1].removeprefix("data: "))
        return data


@asynccontextmanager
async def open_stream(client: Any, query: str = "") -> AsyncIterator[Stream]:
    """A subscribed event stream, ended by the server when the block ends.

    (Quart's test connection waits for the body to end even after a disconnect, so the
    stream is ended the way a stopping server ends it.)"""
    async with client.request(f"/events{query}") as connection:
        try:
            await connection.send_complete()
            stream = Stream(connection)
            with trio.fail_after(5):
                first = await stream.chunk()  # sent once subscribed: nothing later is missed
            assert b": subscribed" in first
            assert connection.headers["Content-Type"] == "text/event-stream"
            yield stream
        finally:
            state_of(client.app.extensions).close()


class TestEvents:
    async def test_transitions_of_a_task(self, client: Any, runtime: Runtime) -> None:
        """A submitted echo task's transitions arrive as events with the task."""
        async with open_stream(client) as stream:
            task = await runtime.submit("echo", {"hi": 1})
            seen = []
            with trio.fail_after(5):
                while "completed" not in seen:
                    data = await stream.event()
                    TransitionOut.model_validate(data)
                    if data["event"]["task_id"] == task.id:
                        seen.append(data["event"]["to"])
            assert seen == ["pending", "queued", "running", "completed"]
            assert data["task"]["result"] == {"hi": 1}

    async def test_filter_by_task(self, client: Any, runtime: Runtime) -> None:
        """``task_id`` keeps one task's transitions only."""
        waiting = await runtime.submit("echo", delay=60)
        async with open_stream(client, f"?task_id={waiting.id}") as stream:
            other = await runtime.submit("echo")
            await runtime.wait(other.id, timeout=5)
            await runtime.cancel(waiting.id)
            with trio.fail_after(5):
                data = await stream.event()
            assert (data["event"]["task_id"], data["event"]["to"]) == (waiting.id, "cancelled")

    async def test_filter_by_type(self, client: Any, runtime: Runtime) -> None:
        """``type`` keeps one task type's transitions only."""
        async with open_stream(client, "?type=fail") as stream:
            await runtime.submit("echo")
            failing = await runtime.submit("fail")
            with trio.fail_after(5):
                data = await stream.event()
            assert (data["task"]["id"], data["task"]["type"]) == (failing.id, "fail")

    async def test_keep_alive_and_close(self, client: Any) -> None:
        """Idle streams get keep-alive comments; closing the server ends them."""
        state = state_of(client.app.extensions)
        state.heartbeat = 0.01
        async with open_stream(client) as stream:
            with trio.fail_after(5):
                assert await stream.chunk() == b": keep-alive\n\n"
                state.close()
                while True:
                    try:
                        await stream.chunk()
                    except trio.EndOfChannel:
                        break
            refused = await client.get("/events")
            assert refused.status_code == 503
