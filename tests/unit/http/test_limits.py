"""Bounded answers: listings are summaries unless asked, pages stop at a byte cap, and
event streams are capped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from prometheus_client import CollectorRegistry
from tests.unit.http.test_events import open_stream

from trellis_actors import Runtime
from trellis_actors.http import create_app
from trellis_actors.http._state import state_of
from trellis_actors.http.routes.events import _stream
from trellis_actors.http.schemas import EventsQuery, TaskPage

BIG = "x" * 100_000


@pytest.fixture
async def capped(runtime: Runtime, registry: CollectorRegistry) -> AsyncIterator[Any]:
    """A client of an app whose pages stop at 250 kB and that holds one event stream."""
    app = create_app(runtime, registry=registry, max_page_bytes=250_000, max_event_streams=1)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def listed(client: Any, query: str) -> dict[str, Any]:
    response = await client.get(f"/tasks?{query}")
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    TaskPage.model_validate(body)
    return body


class TestSummaries:
    async def test_a_listing_leaves_out_payload_and_result(
        self, client: Any, runtime: Runtime
    ) -> None:
        """Without include, items have every field but payload and result."""
        task = await runtime.submit("echo", {"big": BIG})
        await runtime.wait(task.id, timeout=5)
        (item,) = (await listed(client, "limit=10"))["items"]
        assert "payload" not in item and "result" not in item
        assert (item["id"], item["status"]) == (task.id, "completed")
        whole = await (await client.get(f"/tasks/{task.id}")).get_json()
        assert item == {k: v for k, v in whole.items() if k not in ("payload", "result")}

    @pytest.mark.parametrize(
        ("include", "fields"),
        [
            ("payload", {"payload"}),
            ("result", {"result"}),
            ("payload,result", {"payload", "result"}),
            (" result , payload ", {"payload", "result"}),
        ],
    )
    async def test_include_adds_what_it_names(
        self, client: Any, runtime: Runtime, include: str, fields: set[str]
    ) -> None:
        """include=payload,result adds those fields, and only those."""
        task = await runtime.submit("echo", {"n": 1})
        await runtime.wait(task.id, timeout=5)
        (item,) = (await listed(client, f"include={include}"))["items"]
        assert {"payload", "result"} & item.keys() == fields
        assert all(item[name] == {"n": 1} for name in fields)

    @pytest.mark.parametrize("include", ["error", "payload,secret", "payload;result"])
    async def test_include_of_anything_else_is_refused(self, client: Any, include: str) -> None:
        """include names payload and result only: anything else answers 400."""
        response = await client.get(f"/tasks?include={include}")
        assert response.status_code == 400
        assert (await response.get_json())["error"]["field"] == "include"


class TestByteCap:
    async def test_a_page_stops_before_the_cap_and_points_at_the_rest(
        self, capped: Any, runtime: Runtime
    ) -> None:
        """With payloads of 100 kB and a cap of 250 kB a page holds two tasks; following
        next_cursor reaches every task once."""
        ids = [(await runtime.submit("echo", {"big": BIG, "n": i}, delay=60)).id for i in range(5)]
        seen: list[str] = []
        sizes: list[int] = []
        query = "limit=1000&include=payload"
        while True:
            response = await capped.get(f"/tasks?{query}")
            assert len(await response.get_data()) <= 250_000
            body = await response.get_json()
            sizes.append(len(body["items"]))
            assert all(item["payload"]["big"] == BIG for item in body["items"])
            seen += [item["id"] for item in body["items"]]
            if body["next_cursor"] is None:
                break
            assert body["next_cursor"] == seen[-1]
            query = f"limit=1000&include=payload&cursor={body['next_cursor']}"
        assert seen == ids[::-1]
        assert sizes == [2, 2, 1]

    async def test_summaries_are_not_cut(self, capped: Any, runtime: Runtime) -> None:
        """Summaries of the same tasks fit in one page."""
        for i in range(5):
            await runtime.submit("echo", {"big": BIG, "n": i}, delay=60)
        body = await listed(capped, "limit=1000")
        assert len(body["items"]) == 5 and body["next_cursor"] is None

    async def test_one_task_larger_than_the_cap_comes_alone(
        self, runtime: Runtime, registry: CollectorRegistry
    ) -> None:
        """A page holds one task at least, whatever its size."""
        app = create_app(runtime, registry=registry, max_page_bytes=1000)
        older = await runtime.submit("echo", {"big": BIG}, delay=60)
        newer = await runtime.submit("echo", {"big": BIG}, delay=60)
        async with app.test_app() as test_app:
            body = await listed(test_app.test_client(), "include=payload,result")
        assert [item["id"] for item in body["items"]] == [newer.id]
        assert body["next_cursor"] == newer.id != older.id


class TestEventStreamCap:
    async def test_a_stream_past_the_cap_is_refused_with_503(self, capped: Any) -> None:
        """With one stream open, a second answers 503, a JSON error and Retry-After."""
        async with open_stream(capped):
            refused = await capped.get("/events")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            error = (await refused.get_json())["error"]
            assert error["code"] == "too_many_streams"
            assert "at most 1 event streams" in error["message"]


class TestSlowStream:
    async def test_a_stream_whose_reader_lags_loses_nothing(
        self, runtime: Runtime, registry: CollectorRegistry
    ) -> None:
        """An event stream whose reader does not read holds a few batches; the rest waits
        in the store, and it gets every event, once, when it reads again."""
        app = create_app(runtime, registry=registry)
        state = state_of(app.extensions)
        state.event_buffer = 1
        body = _stream(state, EventsQuery(), None)
        assert b": subscribed" in await body.__anext__()
        tasks = []
        for i in range(6):  # one commit each: more batches than the buffer holds
            tasks.append(await runtime.submit("echo", i))
            await runtime.wait(tasks[-1].id, timeout=5)
        chunks = []
        with trio.fail_after(5):
            while len(chunks) < 6 * 4:
                chunk = await body.__anext__()
                if not chunk.startswith(b":"):
                    chunks.append(chunk)
        await body.aclose()
        ids = [int(chunk.split(b"\n", 1)[0].removeprefix(b"id: ")) for chunk in chunks]
        assert ids == sorted(set(ids))
        for task in tasks:
            assert sum(task.id.encode() in chunk for chunk in chunks) == 4
