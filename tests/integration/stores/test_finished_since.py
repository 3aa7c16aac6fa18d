"""``finished_since`` on every store: the ended tasks the UI's per-type charts draw."""

from __future__ import annotations

from tests.integration.stores.kit import BOOM, NOW, S, run

from trellis_actors.lifecycle import Task
from trellis_actors.stores import NewTask, Outcome, Store


async def ended(store: Store, type: str, status: S, started: float, finished: float) -> Task:
    await store.enqueue([NewTask(type, None, max_attempts=1)], started)
    (task,) = await run(store, 1, started)
    outcome = Outcome(task.id, task.lease_owner, task.attempt, status, error=BOOM)
    if status is S.COMPLETED:
        outcome = Outcome(task.id, task.lease_owner, task.attempt, status)
    moves = await store.finish([outcome], finished)
    return moves[-1].task


class TestFinishedSince:
    async def test_completed_and_dead_since_latest_first(self, store: Store) -> None:
        """Completed and dead tasks from ``since`` on (inclusive), with their type, outcome
        and last attempt's start; others are left out."""
        old = await ended(store, "a", S.COMPLETED, NOW, NOW + 1)
        done = await ended(store, "a", S.COMPLETED, NOW + 10, NOW + 12)
        dead = await ended(store, "b", S.FAILED, NOW + 20, NOW + 25)
        await store.enqueue([NewTask("c", None)], NOW + 30)  # still queued
        assert dead.status is S.DEAD and old.finished_at == NOW + 1
        rows = await store.finished_since(NOW + 12, 10)
        assert [(r.type, r.ok, r.finished_at, r.started_at) for r in rows] == [
            ("b", False, NOW + 25, NOW + 20),
            ("a", True, NOW + 12, NOW + 10),
        ]
        assert rows[0].duration == 5
        assert done.finished_at == NOW + 12

    async def test_limit_keeps_the_latest(self, store: Store) -> None:
        for index in range(4):
            await ended(store, "a", S.COMPLETED, NOW + index, NOW + index + 0.5)
        rows = await store.finished_since(NOW, 2)
        assert [row.finished_at for row in rows] == [NOW + 3.5, NOW + 2.5]
