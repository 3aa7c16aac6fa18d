"""Values already in a store that the rules now refuse (written by an older version, or by
hand) are shown for their own task or schedule — a time out of range reads as null — and
never break a listing, a read, a cancel, the event stream or the scheduler."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from tests.integration.rules.kit import Served, restarts, serving

from trellis_actors import _ids
from trellis_actors.scheduling.model import Schedule
from trellis_actors.stores import NewTask, Store, open_store

YEAR_0 = -62135647200.0  # 0001-01-01T00:00:00+14:00: before the first UTC day of year 1
BEYOND_9999 = 1e13  # year 318857


async def written_before(store_url: str, tasks: list[NewTask], schedules: list[Schedule]) -> Any:
    """The store (its URL, or the memory store itself) after an older version wrote
    ``tasks`` and ``schedules`` into it, past today's rules."""
    store: Store = open_store(store_url)
    await store.open()
    await store.enqueue(tasks, time.time())
    for schedule in schedules:
        await store.save_schedule(schedule)
    if store_url == "memory://":
        return store
    await store.close()
    return store_url


def schedule(name: str, **fields: Any) -> Schedule:
    now = time.time()
    base = {"anchor": now, "created_at": now, "updated_at": now}
    return Schedule(id=_ids.new_id(), name=name, task_type="echo", **{**base, **fields})


@pytest.fixture
async def far(store_url: str) -> AsyncIterator[Served]:
    """A served runtime over a store holding a pending task due beyond year 9999."""
    store = await written_before(store_url, [NewTask("echo", "far", run_at=BEYOND_9999)], [])
    async with serving(store) as served:
        yield served


class TestTasks:
    async def test_listing_reading_and_cancelling(self, far: Served) -> None:
        """The task lists, reads and cancels with ``run_at`` null; nothing restarts."""
        listing = await far.client.get("/tasks?status=pending&include=payload")
        assert listing.status_code == 200, listing.text
        (item,) = listing.json()["items"]
        assert (item["payload"], item["run_at"]) == ("far", None)
        assert item["created_at"] is not None
        one = await far.client.get(f"/tasks/{item['id']}")
        assert (one.status_code, one.json()["run_at"]) == (200, None)
        events = await far.client.get(f"/tasks/{item['id']}/events")
        assert events.status_code == 200
        cancelled = await far.client.delete(f"/tasks/{item['id']}")
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["run_at"]) == ("cancelled", None)
        assert restarts(far.runtime) == {}

    async def test_event_stream(self, far: Served) -> None:
        """``GET /events`` carries the task's transition, its time out of range as null."""
        (task,) = (await far.runtime.list()).items
        async with far.client.stream("GET", "/events") as stream:
            lines = stream.aiter_lines()
            async for line in lines:
                if line == ": subscribed":
                    break
            assert (await far.client.delete(f"/tasks/{task.id}")).status_code == 200
            async for line in lines:
                if line.startswith("data: "):
                    moved = json.loads(line.removeprefix("data: "))
                    break
        assert (moved["task"]["id"], moved["task"]["status"]) == (task.id, "cancelled")
        assert moved["task"]["run_at"] is None
        assert restarts(far.runtime) == {}


class TestSchedules:
    async def test_listing_and_scheduler(self, store_url: str) -> None:
        """Schedules whose times cannot be shown list with those times null; the scheduler
        stops the one it cannot fire instead of crashing, and fires the others."""
        now = time.time()
        stored = {
            "year0": schedule("year0", at=YEAR_0, next_run_at=YEAR_0),
            "far": schedule("far", every=60.0, next_run_at=BEYOND_9999),
            "huge": schedule("huge", every=1e300, anchor=now - 1e6, next_run_at=now - 1),
            "tick": schedule("tick", every=1.0, next_run_at=now + 1),
        }
        store = await written_before(store_url, [], list(stored.values()))
        async with serving(store, poll_interval=0.2) as served:
            rt = served.runtime
            with trio.fail_after(20):
                async with rt.subscribe() as events:
                    async for move in events:  # "tick" fires: the scheduler looked at all
                        if move.task.schedule_id == stored["tick"].id:
                            break
            listing = await served.client.get("/schedules")
            assert listing.status_code == 200, listing.text
            shown = {item["name"]: item for item in listing.json()["items"]}
            assert (shown["year0"]["at"], shown["year0"]["next_run_at"]) == (None, None)
            assert shown["year0"]["spec"] == "at a time out of range"
            assert shown["far"]["next_run_at"] is None
            assert shown["huge"]["next_run_at"] is None  # its next slot is beyond 9999
            assert shown["huge"]["last_run_at"] is not None  # its due slot fired
            one = await served.client.get(f"/schedules/{stored['year0'].id}")
            assert one.status_code == 200
            assert (await rt.get_schedule(stored["year0"].id)).next_run_at is None  # stopped
            assert (await rt.get_schedule(stored["far"].id)).next_run_at == BEYOND_9999
            assert restarts(rt) == {}
            deleted = await served.client.delete(f"/schedules/{stored['year0'].id}")
            assert deleted.status_code == 204
