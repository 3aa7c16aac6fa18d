"""Two runtimes on one PostgreSQL database: every slot fires once, and leadership moves.

This runs on the real clock (PostgreSQL work happens in threads), so it lets a few seconds
of schedule pass rather than synchronising on them.
"""

from __future__ import annotations

import itertools
import time

import pytest
import trio

import trellis_actors as ta
from trellis_actors._time import parse_iso
from trellis_actors.lifecycle import Task
from trellis_actors.stores import open_store
from trellis_actors.stores.base import TaskFilter

pytestmark = pytest.mark.postgres

FAST = {"workers": 2, "poll_interval": 0.2, "grace_period": 1.0}  # scheduler looks every 1 s


def make_app() -> ta.App:
    app = ta.App()

    @app.periodic(every="1s")
    async def beat(ctx: ta.TaskContext, payload: object) -> None:
        return None

    return app


async def fired(url: str) -> list[Task]:
    """Every task the schedule created, oldest slot first."""
    store = open_store(url)
    await store.open()
    try:
        page = await store.list_tasks(TaskFilter(type="beat"), 1000, None)
    finally:
        await store.close()
    return sorted(page.items, key=lambda task: task.idempotency_key or "")


class TestTwoNodes:
    """One leader fires; when it goes, the other takes over without a gap or a double."""

    async def test_every_slot_once_and_handover(self, pg_url: str) -> None:
        """Slots 1 s apart from start to end, each exactly once, some after the handover."""
        first = ta.Runtime(make_app(), store=pg_url, **FAST)
        second = ta.Runtime(make_app(), store=pg_url, **FAST)
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)  # first to start: it takes the lead
            await nursery.start(second.run)
            await trio.sleep(3.5)
            await first.shutdown()  # the leader goes away; its advisory lock with it
            handed_over = time.time()
            await trio.sleep(4.0)
            await second.shutdown()
        tasks = await fired(pg_url)
        keys = [task.idempotency_key or "" for task in tasks]
        assert len(keys) == len(set(keys)), "a slot fired twice"
        slots = sorted(parse_iso(key.split(":", 2)[2]) for key in keys)  # schedule:ID:SLOT
        assert len(slots) >= 5
        steps = {round(later - earlier, 3) for earlier, later in itertools.pairwise(slots)}
        assert steps == {1.0}, f"slots were skipped or doubled: {steps}"
        assert any(task.created_at > handed_over for task in tasks), "the second node never fired"
