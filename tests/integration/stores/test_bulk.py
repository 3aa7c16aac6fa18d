"""Bulk operations and retention: every store (memory, SQLite, PostgreSQL) selects, moves
and deletes the same tasks, chunk by chunk, and deletes their history with them."""

from __future__ import annotations

from typing import Any

from tests.integration.stores.kit import BOOM, NOW, S, path, run, steps

from trellis_actors import _ids
from trellis_actors.decisions import BULK_STATUSES, Bulk, Selection
from trellis_actors.lifecycle import Task
from trellis_actors.stores import BulkDone, BulkStep, NewTask, Outcome, Store, TaskFilter


async def add(store: Store, now: float = NOW, **options: Any) -> Task:
    options.setdefault("type", "echo")
    options.setdefault("payload", None)
    (submitted,), _ = await store.enqueue([NewTask(**options)], now)
    return submitted.task


async def ended(store: Store, status: S, now: float = NOW, **options: Any) -> Task:
    """A task (of its own queue unless given one), run and ended at ``now + 1`` as
    ``status``: completed, failed (its type keeps no dead letters) or dead."""
    queue = options.setdefault("queue", f"q-{_ids.new_id()}")
    task = await add(store, now, dead_letter=status is not S.FAILED, **options)
    (running,) = await run(store, 1, now, queues=[queue])
    outcome = Outcome(
        task.id,
        "w1",
        running.attempt,
        S.COMPLETED if status is S.COMPLETED else S.FAILED,
        error=None if status is S.COMPLETED else BOOM,
    )
    moves = await store.finish([outcome], now + 1)
    assert moves[-1].task.status is status
    return moves[-1].task


def step(action: Bulk, limit: int = 1000, dry_run: bool = False, **only: Any) -> BulkStep:
    statuses = only.pop("statuses", BULK_STATUSES[action])
    selection = Selection(frozenset(statuses), **only)
    return BulkStep(action, selection, until=_ids.new_id(), limit=limit, dry_run=dry_run)


async def everything(store: Store, first: BulkStep, now: float) -> list[BulkDone]:
    """Every chunk of a bulk operation, as the runtime drives it."""
    chunks = [await store.bulk(first, now)]
    while chunks[-1].after is not None:
        following = BulkStep(
            first.action,
            first.selection,
            first.until,
            chunks[-1].after,
            first.limit,
            first.dry_run,
        )
        chunks.append(await store.bulk(following, now))
    return chunks


class TestBulkCancel:
    async def test_cancels_what_the_filter_selects_and_nothing_else(self, store: Store) -> None:
        """Type, queue and creation window narrow the selection; ended tasks stay."""
        done = await ended(store, S.COMPLETED, type="a", queue="x")
        early = await add(store, NOW - 10, type="a", queue="x")
        hit = await add(store, NOW, type="a", queue="x")
        delayed = await add(store, NOW, type="a", queue="x", run_at=NOW + 100)
        other_type = await add(store, NOW, type="b", queue="x")
        other_queue = await add(store, NOW, type="a", queue="y")
        late = await add(store, NOW + 10, type="a", queue="x")
        (chunk,) = await everything(
            store,
            step(Bulk.CANCEL, type="a", queue="x", created_after=NOW, created_before=NOW + 10),
            NOW + 20,
        )
        assert chunk.touched == 2 and chunk.after is None
        assert path(chunk.moves) == [(S.QUEUED, S.CANCELLED), (S.PENDING, S.CANCELLED)]
        assert {move.task.id for move in chunk.moves} == {hit.id, delayed.id}
        for task in (early, other_type, other_queue, late):
            assert (await store.get(task.id)).status is S.QUEUED  # type: ignore[union-attr]
        assert (await store.get(done.id)).status is S.COMPLETED  # type: ignore[union-attr]
        for task in (hit, delayed):
            gone = await store.get(task.id)
            assert gone is not None and gone.status is S.CANCELLED and gone.finished_at == NOW + 20
            assert steps(await store.events(task.id))[-1] == (task.status, S.CANCELLED)

    async def test_held_tasks_are_named_and_their_leases_are_gone(self, store: Store) -> None:
        """Running and claimed tasks come back as held, for this node to stop; another
        holder's next heartbeat no longer holds them: that is how it learns."""
        await add(store)
        (running,) = await run(store, 1)
        await add(store)
        (claimed,) = await store.claim(None, 1, "w2", NOW + 60, NOW)
        free = await add(store)
        (chunk,) = await everything(store, step(Bulk.CANCEL), NOW + 1)
        assert path(chunk.moves) == [(S.RUNNING, S.CANCELLED)] + [(S.QUEUED, S.CANCELLED)] * 2
        assert chunk.held == (running.id, claimed.id)
        assert chunk.moves[-1].task.id == free.id
        assert await store.heartbeat([running.id], "w1", NOW + 100) == set()
        assert await store.heartbeat([claimed.id], "w2", NOW + 100) == set()
        late = Outcome(running.id, "w1", running.attempt, S.COMPLETED, result=1)
        assert await store.finish([late], NOW + 2) == []

    async def test_a_filter_larger_than_a_chunk_is_done_chunk_by_chunk(self, store: Store) -> None:
        """Chunks of 3 take 7 tasks in three commits; the last says none are left."""
        tasks = [await add(store) for _ in range(7)]
        chunks = await everything(store, step(Bulk.CANCEL, limit=3), NOW + 1)
        assert [chunk.touched for chunk in chunks] == [3, 3, 1]
        assert [chunk.after for chunk in chunks] == [tasks[2].id, tasks[5].id, None]
        assert (await store.counts()).by_queue == {"default": {"cancelled": 7}}

    async def test_a_dry_run_counts_and_touches_nothing(self, store: Store) -> None:
        for _ in range(5):
            await add(store)
        chunks = await everything(store, step(Bulk.CANCEL, limit=2, dry_run=True), NOW + 1)
        assert sum(chunk.touched for chunk in chunks) == 5
        assert all(chunk.moves == [] for chunk in chunks)
        assert (await store.counts()).by_queue == {"default": {"queued": 5}}

    async def test_tasks_made_after_the_bound_are_not_taken(self, store: Store) -> None:
        """The operation's bound (an id made when it began) leaves newer tasks alone."""
        before = await add(store)
        first = step(Bulk.CANCEL)
        after = await add(store)
        (chunk,) = await everything(store, first, NOW + 1)
        assert [move.task.id for move in chunk.moves] == [before.id]
        assert (await store.get(after.id)).status is S.QUEUED  # type: ignore[union-attr]


class TestBulkRequeue:
    async def test_dead_tasks_go_back_with_fresh_attempts(self, store: Store) -> None:
        dead = await ended(store, S.DEAD, queue="x")
        failed = await ended(store, S.FAILED, queue="x")
        (chunk,) = await everything(store, step(Bulk.REQUEUE, queue="x"), NOW + 5)
        assert chunk.touched == 1 and path(chunk.moves) == [(S.DEAD, S.QUEUED)]
        back = await store.get(dead.id)
        assert back is not None and (back.status, back.attempt, back.error) == (S.QUEUED, 0, None)
        assert (await store.get(failed.id)).status is S.FAILED  # type: ignore[union-attr]
        page = await store.list_tasks(TaskFilter(status=S.QUEUED, queue="x"), 10, None)
        assert [task.id for task in page.items] == [dead.id]


class TestBulkPurge:
    async def test_ended_tasks_go_with_their_history(self, store: Store) -> None:
        """Completed, failed, dead and cancelled tasks go; tasks on their way stay."""
        doomed = [await ended(store, status) for status in (S.COMPLETED, S.FAILED, S.DEAD)]
        cancelled = await add(store, queue="c")
        (chunk,) = await everything(store, step(Bulk.CANCEL, queue="c"), NOW + 1)
        doomed.append(chunk.moves[0].task)
        kept = await add(store, queue="k", idempotency_key="k")
        chunks = await everything(store, step(Bulk.PURGE, limit=2), NOW + 2)
        assert [chunk.touched for chunk in chunks] == [2, 2, 0]
        assert all(chunk.moves == [] for chunk in chunks)
        for task in doomed:
            assert await store.get(task.id) is None and await store.events(task.id) == []
        assert cancelled.id == doomed[-1].id
        assert (await store.get(kept.id)) is not None
        assert (await store.counts()).by_queue == {"k": {"queued": 1}}


class TestRetention:
    async def test_every_ended_status_has_its_own_cutoff(self, store: Store) -> None:
        """Completed, failed, dead and cancelled tasks go once past their own cutoff, with
        their events; a status without a cutoff is kept."""
        tasks = {status: await ended(store, status) for status in (S.COMPLETED, S.FAILED, S.DEAD)}
        cancel = await add(store, queue="c")
        (chunk,) = await everything(store, step(Bulk.CANCEL, queue="c"), NOW + 1)
        tasks[S.CANCELLED] = chunk.moves[0].task
        queued = await add(store, queue="q")
        assert cancel.id == tasks[S.CANCELLED].id
        assert await store.prune({S.FAILED: NOW + 1, S.CANCELLED: NOW + 1}, 1000) == 0
        assert await store.prune({S.FAILED: NOW + 2, S.CANCELLED: NOW + 2}, 1000) == 2
        for status in (S.FAILED, S.CANCELLED):
            gone = tasks[status].id
            assert await store.get(gone) is None and await store.events(gone) == []
        for status in (S.COMPLETED, S.DEAD):
            assert await store.get(tasks[status].id) is not None
            assert await store.events(tasks[status].id) != []
        cutoffs = {status: NOW + 2 for status in S}  # a cutoff for active ones: ignored
        assert await store.prune(cutoffs, 1000) == 2
        assert (await store.counts()).by_queue == {"q": {"queued": 1}}
        assert await store.get(queued.id) is not None

    async def test_prunes_at_most_limit_tasks_a_call(self, store: Store) -> None:
        """A round's chunk: ``limit`` deleted means there may be more."""
        for _ in range(5):
            await ended(store, S.COMPLETED)
        assert await store.prune({S.COMPLETED: NOW + 2}, 2) == 2
        assert await store.prune({S.COMPLETED: NOW + 2}, 2) == 2
        assert await store.prune({S.COMPLETED: NOW + 2}, 2) == 1
        assert await store.prune({S.COMPLETED: NOW + 2}, 2) == 0
