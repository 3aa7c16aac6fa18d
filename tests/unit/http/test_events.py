"""``GET /events``: lifecycle transitions as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from trellis_actors import Runtime
from trellis_actors.http._state import state_of
from trellis_actors.http.schemas import TransitionOut


class Stream:
    """Reads server-sent events from a test-client connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.buffer = b""
        self.last_id: int | None = None  # the id: of the last event read

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
        assert lines[0].startswith("id: ") and lines[1] == "event: transition", lines
        self.last_id = int(lines[0].removeprefix("id: "))
        data: dict[str, Any] = json.loads(lines[2].removeprefix("data: "))
        return data


@asynccontextmanager
async def open_stream(
    client: Any, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """A subscribed event stream, ended by the server when the block ends.

    (Quart's test connection waits for the body to end even after a disconnect, so the
    stream is ended the way a stopping server ends it.)"""
    async with client.request(f"/events{query}", headers=headers) as connection:
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


async def transitions_until(stream: Stream, task_id: str, to: str) -> list[tuple[int, str, str]]:
    """(id, task id, to) of each event read until ``task_id`` moves ``to``."""
    seen: list[tuple[int, str, str]] = []
    with trio.fail_after(5):
        while not seen or seen[-1][1:] != (task_id, to):
            data = await stream.event()
            assert stream.last_id is not None
            seen.append((stream.last_id, data["event"]["task_id"], data["event"]["to"]))
    return seen


async def history(runtime: Runtime, *payloads: int) -> list[tuple[int, str, str]]:
    """Echo tasks run one after another, and every event since, read from the store's
    log: (id, task id, to)."""
    async with runtime.follow(after=0) as events:
        for payload in payloads:
            await runtime.wait((await runtime.submit("echo", payload)).id, timeout=5)
        seen: list[tuple[int, str, str]] = []
        with trio.fail_after(5):
            async for recorded in events:
                seen.append((recorded.id, recorded.event.task_id, recorded.event.to_status))
                if len(seen) == 4 * len(payloads):
                    return seen
    raise AssertionError("unreachable")


class TestResume:
    async def test_every_event_has_an_id(self, client: Any, runtime: Runtime) -> None:
        """Each transition comes with the id the store recorded it under."""
        async with open_stream(client) as stream:
            task = await runtime.submit("echo", 1)
            seen = await transitions_until(stream, task.id, "completed")
        async with runtime.follow(after=0) as events:
            with trio.fail_after(5):
                recorded = [await events.__anext__() for _ in seen]
        assert seen == [(r.id, r.event.task_id, r.event.to_status) for r in recorded]

    @pytest.mark.parametrize("how", ["header", "query"])
    async def test_last_event_id_resumes_after_it(
        self, client: Any, runtime: Runtime, how: str
    ) -> None:
        """Last-Event-ID (or ?after=) resumes with exactly the events after it, those
        written while no stream was open first."""
        seen = await history(runtime, 1, 2)
        mark = seen[2][0]
        if how == "header":
            resumed = open_stream(client, headers={"Last-Event-ID": f" {mark} "})
        else:
            resumed = open_stream(client, f"?after={mark}")
        async with resumed as stream:
            last = seen[-1][1]
            again = await transitions_until(stream, last, "completed")
        assert again == seen[3:]

    async def test_the_header_wins_over_the_query(self, client: Any, runtime: Runtime) -> None:
        """A reconnecting EventSource sends Last-Event-ID to the URL it first opened."""
        seen = await history(runtime, 1)
        headers = {"Last-Event-ID": str(seen[2][0])}
        async with open_stream(client, "?after=0", headers) as stream:
            await stream.event()
            assert stream.last_id == seen[3][0]

    @pytest.mark.parametrize(
        ("query", "header", "field"),
        [
            ("?after=-1", None, "after"),
            ("?after=x", None, "after"),
            (f"?after={2**63}", None, "after"),
            ("", "abc", "Last-Event-ID"),
            ("", "-1", "Last-Event-ID"),
            ("", "1_000", "Last-Event-ID"),
            ("", str(2**63), "Last-Event-ID"),
        ],
    )
    async def test_a_bad_resume_point_is_a_400_naming_it(
        self, client: Any, query: str, header: str | None, field: str
    ) -> None:
        headers = {} if header is None else {"Last-Event-ID": header}
        response = await client.get(f"/events{query}", headers=headers)
        assert response.status_code == 400
        error = (await response.get_json())["error"]
        assert (error["code"], error["field"]) == ("validation_error", field)
