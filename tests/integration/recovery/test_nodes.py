"""Several nodes on one PostgreSQL database share the work and never run a task twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from tests.integration.recovery.kit import (
    Log,
    all_finished,
    claims,
    nodes,
    read_store,
    submit,
    until,
)

from trellis_actors import TaskStatus

pytestmark = pytest.mark.postgres

TASKS = 3000


async def test_three_nodes_run_each_task_exactly_once(pg_url: str, tmp_path: Path) -> None:
    """Three nodes claim from one database (SKIP LOCKED batches, NOTIFY wake-ups): every
    task runs once, on one node, and every node does some of the work."""
    log_path = tmp_path / "tasks.log"
    # Small claims and no prefetch, so that no node can take the whole backlog at once;
    # the default long lease: no lease may expire in a run without crashes.
    options = ("--workers", "4", "--claim-ahead", "16", "--prefetch", "1", "--lease", "30")
    async with nodes(log_path) as start:
        started = [await start(pg_url, *options, wait=False) for _ in range(3)]
        for node in started:
            await node.ready()
        submitted = await submit(pg_url, [{"type": "echo", "payload": i} for i in range(TASKS)])
        await until(
            "every task to finish", lambda: all_finished(pg_url, TASKS), timeout=60, every=0.1
        )
        for node in started:
            await node.stop()
    tasks, _ = await read_store(pg_url, history=False)
    claimed = await trio.to_thread.run_sync(claims, pg_url)
    log = Log.read(log_path)

    assert sorted(tasks) == sorted(submitted)
    assert all(task.status is TaskStatus.COMPLETED for task in tasks.values())
    assert sorted(log.starts) == sorted(submitted)
    several = {task_id: pids for task_id, pids in log.starts.items() if len(pids) != 1}
    assert not several, f"{len(several)} tasks ran more than once: {list(several.items())[:5]}"
    assert all(log.ends[task_id] == pids for task_id, pids in log.starts.items())
    reclaimed = {task_id: n for task_id, n in claimed.items() if n != 1}
    assert sorted(claimed) == sorted(submitted) and not reclaimed, reclaimed
    pids = [node.pid for node in started]
    shares = {pid: log.ended_by(pid) for pid in pids}
    assert all(shares.values()), f"a node did none of the work: {shares}"
    assert sum(shares.values()) == TASKS
