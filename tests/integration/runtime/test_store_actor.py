"""The store actor on real stores: a request whose data the store refuses fails alone, and
an outage is ridden out.

A batch whose write the driver refuses for the data's sake (an integer out of range, a
NUL character PostgreSQL cannot store, a lone surrogate SQLite cannot encode) is written
again part by part: the bad request gets a ValidationError, the others their answers, and
the actor keeps running. The messages are put in the mailbox before the actor starts, so
that they make one batch.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trellis_actors import StoreUnavailable, TaskStatus, Transition, ValidationError
from trellis_actors._time import Clock
from trellis_actors.actors import Ref, Request
from trellis_actors.actors._mailbox import Mailbox
from trellis_actors.runtime.messages import (
    Claim,
    Finish,
    Get,
    ListTasks,
    Ping,
    StoreMsg,
    Submit,
    SubscribeEvents,
)
from trellis_actors.runtime.store_actor import StoreActor
from trellis_actors.stores import NewTask, Outcome, SqliteStore, Store, TaskFilter, open_store

OWNER = "node-1"
#: Beyond a 64-bit integer: SQLite raises OverflowError, PostgreSQL "integer out of range".
TOO_BIG = 2**63


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tasks.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    opened = open_store(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def unstorable_text(store: Store) -> str:
    """Text the store's driver refuses: NUL for PostgreSQL, a lone surrogate for SQLite."""
    return "a\x00b" if store.url.startswith("postgres") else "a\ud800b"


async def run_batch(store: Store, batch: Sequence[StoreMsg]) -> StoreActor:
    """Start a store actor with ``batch`` waiting in its mailbox; wait for every reply."""
    actor = StoreActor(store, Clock(), Ref("queue", Mailbox[Any](math.inf)))
    for msg in batch:
        actor.ref.tell_nowait(msg)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        with trio.fail_after(10):
            for msg in batch:
                if isinstance(msg, Request):
                    with contextlib.suppress(Exception):  # checked by the test
                        await msg.reply.wait()
            assert await actor.ref.ask(Ping()), "the actor and its store still answer"
        actor.request_stop()
    return actor


def submit(payload: Any, **fields: Any) -> Submit:
    return Submit((NewTask("t", payload, **fields),))


async def test_one_bad_submission_fails_alone(store: Store) -> None:
    """The bad submission gets a ValidationError; the others and the claim go through."""
    good = [submit(i) for i in range(3)]
    bad = submit("bad", priority=TOO_BIG)
    claim = Claim(None, 10, OWNER, Clock().now() + 60)
    await run_batch(store, [good[0], bad, good[1], claim, good[2]])

    with pytest.raises(ValidationError, match="the store refused the data"):
        bad.reply.result()
    stored = [msg.reply.result()[0].task for msg in good]
    assert [task.payload for task in stored] == [0, 1, 2]
    assert isinstance(claim.reply.result(), list)
    page = await store.list_tasks(TaskFilter(), 10, None)
    assert sorted(task.payload for task in page.items) == [0, 1, 2]  # nothing else stored


async def test_one_bad_submission_of_many_in_one_request(store: Store) -> None:
    """A request is stored whole or not at all: one bad task fails its whole request."""
    mixed = Submit((NewTask("t", "fine"), NewTask("t", "bad", priority=TOO_BIG)))
    alone = submit("alone")
    await run_batch(store, [mixed, alone])
    with pytest.raises(ValidationError):
        mixed.reply.result()
    assert alone.reply.result()[0].task.payload == "alone"
    page = await store.list_tasks(TaskFilter(), 10, None)
    assert [task.payload for task in page.items] == ["alone"]


async def test_bad_data_in_a_request_of_its_own_fails_that_request(store: Store) -> None:
    """A request handled on its own (a listing) with text the driver refuses: a
    ValidationError for it, not a crash of the actor; the next request is answered."""
    listing = ListTasks(TaskFilter(type=unstorable_text(store)), 10, None)
    after = Get("no-such-task")
    await run_batch(store, [listing, after])
    with pytest.raises(ValidationError, match="the store refused the data"):
        listing.reply.result()
    assert after.reply.result() is None


@pytest.mark.postgres
async def test_one_bad_outcome_is_dropped_alone(pg_url: str) -> None:
    """An outcome whose result PostgreSQL cannot store (a NUL in JSON) is dropped, with an
    error logged; the other outcomes of the batch are written."""
    store = open_store(pg_url)
    await store.open()
    try:
        now = Clock().now()
        await store.enqueue([NewTask("t", i) for i in range(3)], now)
        claimed = await store.claim(None, 3, OWNER, now + 60, now)
        assert len(claimed) == 3
        results: list[Any] = ["done", {"text": "a\x00b"}, "done"]
        finish = Finish(
            tuple(
                Outcome(task.id, OWNER, task.attempt + 1, TaskStatus.COMPLETED, result=result)
                for task, result in zip(claimed, results, strict=True)
            )
        )
        await run_batch(store, [finish, Ping()])
        after = {task.id: await store.get(task.id) for task in claimed}
        statuses = [after[task.id].status for task in claimed]  # type: ignore[union-attr]
        # The dropped one is still claimed (queued, leased): it runs again once its lease
        # expires.
        assert statuses == [TaskStatus.COMPLETED, TaskStatus.QUEUED, TaskStatus.COMPLETED]
    finally:
        await store.close()


# -- an outage in virtual time ----------------------------------------------------------
BLOB = "x" * 20_000  # a result needing new pages: a full disk refuses it


def set_disk_full(store: SqliteStore, full: bool) -> None:
    """No page beyond those the database has (SQLITE_FULL), or no limit again; the limit
    belongs to the store's own connection, set in its thread."""
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages if full else 1073741823}")


async def test_a_long_outage_is_probed_with_capped_backoff(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """Two (virtual) minutes of a full disk: requests are refused at once with a hint no
    later than the cap (5 s), the actor never raises, and once the disk has room the kept
    outcome is written at the next probe, within 5 s."""
    # Virtual time jumps only when nothing has happened for 20 ms of real time, so that
    # it does not run ahead while SQLite works in its thread.
    mock_clock.autojump_threshold = 0.02
    store = SqliteStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    await store.open()
    clock = Clock()
    await store.enqueue([NewTask("t", None)], clock.now())
    (running,) = await store.claim(None, 1, OWNER, clock.now() + 600, clock.now())
    full = functools.partial(trio.to_thread.run_sync, limiter=store._limiter)
    await full(set_disk_full, store, True)
    actor = StoreActor(store, clock, Ref("queue", Mailbox[Any](math.inf)))
    events, moves = trio.open_memory_channel[tuple[Transition, ...]](math.inf)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await actor.ref.ask(SubscribeEvents(events))
            done = TaskStatus.COMPLETED
            outcome = Outcome(running.id, OWNER, running.attempt + 1, done, result=BLOB)
            actor.ref.tell_nowait(Finish((outcome,)))
            hints = []
            outage_ends = trio.current_time() + 120
            while trio.current_time() < outage_ends:
                asked_at = trio.current_time()
                with pytest.raises(StoreUnavailable, match="database or disk is full") as caught:
                    await actor.ref.ask(Get(running.id))
                assert trio.current_time() == asked_at, "refused at once, not queued"
                hints.append(caught.value.retry_after)
                await trio.sleep(7)  # a client that comes back now and then
            assert hints[0] <= 0.1 and max(hints) <= 5.0
            assert await actor.ref.ask(Ping()) is False

            await full(set_disk_full, store, False)
            freed_at = trio.current_time()
            with trio.fail_after(30):
                async for batch in moves:
                    if any(task.status is TaskStatus.COMPLETED for task, _ in batch):
                        break
            assert trio.current_time() - freed_at <= 5.0
            done = await actor.ref.ask(Get(running.id))
            assert done is not None and done.status is TaskStatus.COMPLETED
            assert done.result == BLOB
            assert await actor.ref.ask(Ping()) is True
            actor.request_stop()
    finally:
        await store.close()
