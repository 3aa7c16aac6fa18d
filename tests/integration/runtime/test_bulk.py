"""Bulk operations and retention through a running runtime: chunks, events, handlers
stopped (here and on another node), and every ended status pruned after its own time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from trellis_actors import (
    App,
    Retention,
    TaskContext,
    TaskNotFound,
    TaskStatus,
    ValidationError,
    open_runtime,
)
from trellis_actors.lifecycle import Task
from trellis_actors.stores.base import BULK_CHUNK

S = TaskStatus


class Handlers:
    """``block`` waits until cancelled (counting starts and stops); ``ok`` completes;
    ``die`` fails into the dead letters; ``drop`` fails for good, keeping no dead letter."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0
        self.changed = trio.Event()

    def app(self) -> App:
        app = App()

        @app.task(name="block")
        async def block(ctx: TaskContext, payload: Any) -> None:
            self._count(started=1)
            try:
                await trio.sleep_forever()
            finally:
                self._count(stopped=1)

        @app.task(name="ok")
        async def ok(ctx: TaskContext, payload: Any) -> Any:
            return payload

        @app.task(name="die", max_attempts=1)
        async def die(ctx: TaskContext, payload: Any) -> None:
            raise RuntimeError("dies")

        @app.task(name="drop", max_attempts=1, dead_letter=False)
        async def drop(ctx: TaskContext, payload: Any) -> None:
            raise RuntimeError("dropped")

        return app

    def _count(self, started: int = 0, stopped: int = 0) -> None:
        self.started += started
        self.stopped += stopped
        self.changed.set()
        self.changed = trio.Event()

    async def until(self, *, started: int = 0, stopped: int = 0) -> None:
        while self.started < started or self.stopped < stopped:
            await self.changed.wait()


class TestBulkThroughTheRuntime:
    async def test_more_than_a_chunk_is_cancelled_with_every_event_published(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A filter matching more than one chunk touches every task; the moves reach
        subscribers one chunk (one commit) at a time."""
        total = BULK_CHUNK * 2 + 500
        async with open_runtime(Handlers().app(), workers=0) as rt:
            for start in range(0, total, 1000):
                stop = min(start + 1000, total)
                await rt.submit_many([{"type": "ok", "payload": i} for i in range(start, stop)])
            assert await rt.cancel_many(type="ok", dry_run=True) == total
            batches: list[tuple[Any, ...]] = []
            with rt.observe(batches.append):
                assert await rt.cancel_many(status="queued") == total
            assert [len(batch) for batch in batches] == [BULK_CHUNK, BULK_CHUNK, 500]
            moved = [move for batch in batches for move in batch]
            assert {(m.event.from_status, m.event.to_status) for m in moved} == {
                (S.QUEUED, S.CANCELLED)
            }
            assert len({move.task.id for move in moved}) == total
            counts = await rt.counts()
            assert counts.by_queue == {"default": {"cancelled": total}}
            assert await rt.purge_many(status="cancelled") == total
            assert (await rt.counts()).by_queue == {}

    async def test_other_work_goes_between_chunks(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A submission made once a bulk cancel is under way is stored before the
        operation's last chunk: one chunk is one store message, so the store actor is
        never held for the whole operation."""
        total = BULK_CHUNK * 5
        async with open_runtime(Handlers().app(), workers=0) as rt:
            for start in range(0, total, 1000):
                await rt.submit_many([{"type": "ok"} for _ in range(start, start + 1000)])
            cancelled: list[int] = []  # cancellations published before the arrival
            after: list[int] = []  # and after it (the arrival's own batch counts here)
            under_way = trio.Event()

            def seen(batch: tuple[Any, ...]) -> None:
                arrived = any(move.event.from_status is None for move in batch)
                (after if arrived or after else cancelled).append(
                    sum(move.task.status is S.CANCELLED for move in batch)
                )
                under_way.set()

            async def submit_meanwhile() -> None:
                await under_way.wait()
                await rt.submit("ok", delay=60)

            with rt.observe(seen):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(submit_meanwhile)
                    assert await rt.cancel_many(status="queued") == total
            assert sum(cancelled) + sum(after) == total
            assert cancelled and after[1:], (cancelled, after)  # chunks on either side

    async def test_a_running_handler_on_this_node_is_stopped(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        handlers = Handlers()
        async with open_runtime(handlers.app(), workers=2) as rt:
            running = [await rt.submit("block", i) for i in range(2)]
            waiting = await rt.submit("block", delay=60)
            with trio.fail_after(5):
                await handlers.until(started=2)
            assert await rt.cancel_many(type="block") == 3
            with trio.fail_after(5):
                await handlers.until(stopped=2)
            for task in [*running, waiting]:
                assert (await rt.get(task.id)).status is S.CANCELLED

    async def test_requeue_many_revives_dead_tasks(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        async with open_runtime(Handlers().app(), workers=1) as rt:
            dead = [await rt.wait((await rt.submit("die", i)).id) for i in range(3)]
            assert {task.status for task in dead} == {S.DEAD}
            batches: list[tuple[Any, ...]] = []
            with rt.observe(batches.append):
                assert await rt.requeue_many(status="dead", type="die") == 3
            requeued = {
                move.task.id
                for batch in batches
                for move in batch
                if (move.event.from_status, move.event.to_status) == (S.DEAD, S.QUEUED)
            }
            assert requeued == {task.id for task in dead}

    async def test_the_rules_refuse_a_filter_before_anything_is_touched(self) -> None:
        async with open_runtime(Handlers().app(), workers=0) as rt:
            with pytest.raises(ValidationError, match="needs a filter"):
                await rt.cancel_many()
            with pytest.raises(ValidationError, match="touches only dead tasks, not queued"):
                await rt.requeue_many(status="queued")
            with pytest.raises(ValidationError, match="unknown filter field 'owner'"):
                await rt.purge_many(owner="me")  # type: ignore[call-arg]


class TestRetention:
    async def test_every_ended_status_goes_after_its_own_time_with_its_events(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Completed after 1 min, failed after 2, dead after 3, cancelled after 4: each is
        deleted, history and all, at the first janitor round past its time."""
        retention = Retention(completed=60, failed=120, dead=180, cancelled=240)
        async with open_runtime(
            Handlers().app(), workers=1, retention=retention, janitor_interval=10
        ) as rt:
            ended: dict[S, Task] = {}
            for type, status in (("ok", S.COMPLETED), ("drop", S.FAILED), ("die", S.DEAD)):
                ended[status] = await rt.wait((await rt.submit(type)).id)
                assert ended[status].status is status
            ended[S.CANCELLED] = await rt.cancel((await rt.submit("ok", delay=3600)).id)
            for status in ended:
                assert await rt.events(ended[status].id)
            kept = await rt.submit("ok", delay=3600)
            ended_by = trio.current_time()
            order = [S.COMPLETED, S.FAILED, S.DEAD, S.CANCELLED]
            for index, (after, status) in enumerate(zip((75, 135, 195, 255), order, strict=True)):
                await trio.sleep_until(ended_by + after)
                for gone in order[: index + 1]:
                    with pytest.raises(TaskNotFound):
                        await rt.get(ended[gone].id)
                    with pytest.raises(TaskNotFound):
                        await rt.events(ended[gone].id)
                for left in order[index + 1 :]:
                    assert (await rt.get(ended[left].id)).status is left, status
            assert (await rt.get(kept.id)).status is S.PENDING
