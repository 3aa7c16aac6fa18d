"""Runtime.observe: synchronous observers, called by the store actor with every batch."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from trellis_actors import App, TaskContext, TaskStatus, Transition, open_runtime

S = TaskStatus


def adding_app() -> App:
    app = App()

    @app.task(name="add")
    async def add(ctx: TaskContext, payload: Any) -> int:
        return int(payload) + 1

    return app


class Recorder:
    """An observer that keeps every batch it is called with."""

    def __init__(self) -> None:
        self.batches: list[tuple[Transition, ...]] = []

    def __call__(self, batch: tuple[Transition, ...]) -> None:
        assert isinstance(batch, tuple) and batch, "a batch is a non-empty tuple"
        self.batches.append(batch)

    def moves(self, task_id: str | None = None) -> list[Transition]:
        return [m for b in self.batches for m in b if task_id is None or m.task.id == task_id]

    def statuses(self, task_id: str) -> list[S]:
        return [move.task.status for move in self.moves(task_id)]


async def test_an_observer_sees_every_transition_of_every_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each task's moves reach the observer once, in order, in the batches a subscriber
    gets: pending, queued, running, completed."""
    recorder = Recorder()
    async with open_runtime(adding_app(), workers=3) as rt, rt.subscribe() as events:
        with rt.observe(recorder):
            tasks = await rt.submit_many([{"type": "add", "payload": i} for i in range(40)])
            with trio.fail_after(60):
                ended = [await rt.wait(task.id) for task in tasks]
        histories = [await rt.events(task.id) for task in tasks]
        streamed: list[tuple[Transition, ...]] = []
        with trio.move_on_after(1):  # whatever was published has been delivered by then
            async for batch in events.batches():
                streamed.append(batch)
    assert [task.status for task in ended] == [S.COMPLETED] * 40
    for i, task in enumerate(tasks):
        assert recorder.statuses(task.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED]
        moves = recorder.moves(task.id)
        assert [move.event.to_status for move in moves] == recorder.statuses(task.id)
        assert moves[-1].task.result == i + 1
        assert [move.event for move in moves] == histories[i]
    assert recorder.batches == streamed  # the very batches published to subscribers


async def test_an_observer_is_not_called_after_its_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the with block removes the observer; others, and the runtime, go on."""
    inner, outer = Recorder(), Recorder()
    async with open_runtime(adding_app()) as rt:
        with rt.observe(outer):
            with rt.observe(inner):
                first = await rt.wait((await rt.submit("add", 1)).id)
            calls = len(inner.batches)
            second = await rt.wait((await rt.submit("add", 2)).id)
    assert (first.result, second.result) == (2, 3)
    assert inner.statuses(first.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED]
    assert len(inner.batches) == calls
    assert inner.moves(second.id) == []
    assert outer.statuses(second.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED]


async def test_a_failing_observer_stops_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """An observer that raises is skipped: observers before and after it still get every
    batch, tasks keep completing, and the store actor is not restarted."""
    before, after = Recorder(), Recorder()
    failures = 0

    def broken(batch: tuple[Transition, ...]) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("observer bug")

    async with open_runtime(adding_app(), workers=2) as rt:
        with rt.observe(before), rt.observe(broken), rt.observe(after):
            tasks = await rt.submit_many([{"type": "add", "payload": i} for i in range(10)])
            with trio.fail_after(60):
                ended = [await rt.wait(task.id) for task in tasks]
            later = await rt.wait((await rt.submit("add", 100)).id)
        store = rt.snapshot().find("store")
    assert [task.result for task in ended] == [i + 1 for i in range(10)]
    assert later.status is S.COMPLETED and later.result == 101
    assert failures == len(before.batches) > 0
    assert after.batches == before.batches
    for task in [*tasks, later]:
        assert after.statuses(task.id) == [S.PENDING, S.QUEUED, S.RUNNING, S.COMPLETED]
    assert store is not None and store.restarts == 0 and store.state == "running"
