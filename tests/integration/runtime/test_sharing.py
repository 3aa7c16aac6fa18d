"""Two nodes on one PostgreSQL database share a backlog of slow tasks evenly: neither
claims more than it starts, so the work ends as soon as the workers allow."""

from __future__ import annotations

import pytest
import trio

from trellis_actors import App, TaskContext, TaskStatus, open_runtime

pytestmark = pytest.mark.postgres

SECONDS = 2.0  # long beside a claim's round trip, so 10% leaves room on a loaded machine
TASKS = 12


def app_for(node: str, ran: dict[str, str]) -> App:
    app = App()

    @app.task(name="slow", max_attempts=1)
    async def slow(ctx: TaskContext, payload: None) -> None:
        ran[ctx.task_id] = node
        await trio.sleep(SECONDS)

    return app


async def test_two_nodes_share_a_backlog_of_slow_tasks(pg_url: str) -> None:
    """A 2-worker and a 4-worker node, 12 tasks of 2 s: done in about 4 s (the ideal
    makespan, within 10%), the bigger node running twice as many; the store never shows
    more tasks running than the two nodes have workers."""
    ran: dict[str, str] = {}
    peak = 0
    async with (
        # A short poll: waiting on a task that the other node ran notices its end then.
        open_runtime(app_for("a", ran), store=pg_url, workers=2, node="a", poll_interval=0.2) as a,
        open_runtime(app_for("b", ran), store=pg_url, workers=4, node="b", poll_interval=0.2),
    ):
        tasks = await a.submit_many([{"type": "slow"} for _ in range(TASKS)])
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, (await a.counts()).total(TaskStatus.RUNNING))
                    await trio.sleep(0.05)

            nursery.start_soon(watch)
            done = [await a.wait(task.id, timeout=30) for task in tasks]
            nursery.cancel_scope.cancel()
    # From the submission to the last finish, as the store recorded them (waiting on
    # another node's task notices its end only at the waiter's next poll).
    makespan = max(t.finished_at or 0 for t in done) - min(t.created_at for t in done)
    ideal = TASKS / 6 * SECONDS
    assert all(task.status is TaskStatus.COMPLETED for task in done)
    assert makespan <= ideal * 1.1, f"{makespan:.2f}s against an ideal of {ideal:.2f}s: {ran}"
    assert sorted(ran.values()).count("a") == 4 and sorted(ran.values()).count("b") == 8
    assert peak <= 6
