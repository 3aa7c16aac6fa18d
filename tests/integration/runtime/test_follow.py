"""``Runtime.follow``: every node's transitions from the store's log, resumable by id."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trellis_actors import App, Recorded, TaskStatus, ValidationError, open_runtime, testing
from trellis_actors.runtime.messages import FeedWake

S = TaskStatus
GUARD = 60  # seconds: a guard against a hang only, never a measure


async def take_until_ended(
    events: Any, task_ids: set[str], into: list[Recorded] | None = None
) -> list[Recorded]:
    """Recorded transitions until every task of ``task_ids`` has ended."""
    seen: list[Recorded] = [] if into is None else into
    left = set(task_ids)
    with trio.fail_after(GUARD):
        async for recorded in events:
            seen.append(recorded)
            if recorded.event.to_status is S.COMPLETED:
                left.discard(recorded.event.task_id)
            if not left:
                break
    return seen


class TestFollow:
    async def test_every_transition_once_and_resumable(self, store_url: str) -> None:
        """follow() from now gets each task's transitions once, ids growing; following
        again after any id gets exactly the events after it."""
        async with open_runtime(App(), store=store_url, workers=2) as rt:
            async with rt.follow() as events:
                tasks = [await rt.submit("echo", n) for n in range(3)]
                seen = await take_until_ended(events, {t.id for t in tasks})
                assert events.last_id == seen[-1].id
            for task in tasks:
                mine = [r.event for r in seen if r.event.task_id == task.id]
                assert mine == await rt.events(task.id)
            ids = [r.id for r in seen]
            assert len(set(ids)) == len(ids)
            middle = seen[len(seen) // 2]
            async with rt.follow(after=middle.id) as resumed:
                rest = [await anext_guarded(resumed) for _ in seen[len(seen) // 2 + 1 :]]
            assert [(r.id, r.event) for r in rest] == [
                (r.id, r.event) for r in seen[len(seen) // 2 + 1 :]
            ]

    async def test_a_slow_reader_loses_nothing(self) -> None:
        """A follower with room for one batch that reads slowly is read for again once
        it has room: it gets every event, in order."""
        async with testing.open_test_runtime(workers=4) as rt, rt.follow(buffer=1) as events:
            tasks = [await rt.submit("echo", n) for n in range(30)]
            await testing.run_until_idle(rt, timeout=GUARD)
            seen = await take_until_ended(events, {t.id for t in tasks})
            histories = {t.id: await rt.events(t.id) for t in tasks}
        assert sum(map(len, histories.values())) == len(seen)
        for task in tasks:
            assert [r.event for r in seen if r.event.task_id == task.id] == histories[task.id]

    async def test_a_follow_behind_another_message_is_answered(self, autojump_clock: Any) -> None:
        """With no other follower, a ``Follow`` that reaches the feed behind another
        message (a commit's wake) is answered at once, not left waiting for ever: the
        UI's live pages, each a follower of its own, hung when they opened just as a
        task moved."""
        async with testing.open_test_runtime() as rt:
            rt.tree.feed.tell_nowait(FeedWake())  # no checkpoint until Follow is queued too
            with trio.fail_after(GUARD):
                async with rt.follow() as events:
                    task = await rt.submit("echo", None)
                    seen = await take_until_ended(events, {task.id})
            assert [r.event for r in seen] == await rt.events(task.id)

    async def test_the_stream_ends_when_the_runtime_stops(self) -> None:
        async with testing.open_test_runtime() as rt, rt.follow() as events:
            await rt.shutdown()
            with trio.fail_after(GUARD):
                assert [r async for r in events] == []

    @pytest.mark.parametrize("after", [-1, True, 1.5, "1", 2**63])
    async def test_after_must_be_an_event_id(self, after: Any) -> None:
        async with testing.open_test_runtime() as rt:
            with pytest.raises(ValidationError, match="after must be an event id"):
                async with rt.follow(after=after):
                    pass


@pytest.mark.postgres
class TestAcrossNodes:
    async def test_a_follower_sees_another_nodes_work(self, pg_url: str) -> None:
        """A node that runs nothing follows a task that another node runs to the end."""
        async with (
            open_runtime(App(), store=pg_url, workers=0) as watcher,
            open_runtime(App(), store=pg_url, workers=1, queues=["far"]) as worker,
            watcher.follow() as events,
        ):
            task = await watcher.submit("echo", {"hi": 1}, queue="far")
            seen = await take_until_ended(events, {task.id})
        mine = [r for r in seen if r.event.task_id == task.id]
        assert [r.event.to_status for r in mine] == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED]
        assert mine[-1].task.result == {"hi": 1}
        assert mine[2].event.node == worker.node


async def anext_guarded(events: Any) -> Recorded:
    with trio.fail_after(GUARD):
        recorded: Recorded = await events.__anext__()
        return recorded
