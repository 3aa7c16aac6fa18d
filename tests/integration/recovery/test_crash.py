"""A node killed with SIGKILL in the middle of its work loses nothing.

The node runs in a child process (``node.py``) and is killed without warning while it
holds running tasks. Delivery is at least once: the tasks the killed node held come back
when their leases expire and run again on the node that carries on; nothing else runs
twice, and every task completes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tests.integration.recovery.kit import (
    Log,
    Node,
    all_finished,
    check_crash_recovery,
    nodes,
    read_store,
    submit,
    until,
)

from trellis_actors import TaskStatus

TASKS = 300
WORKERS = 8  # node.py's default
PREFETCH = 4  # node.py's default
FLUSH_BATCH = 256  # outcomes per flush at most (QueueConfig.flush_batch)


def workload(count: int) -> list[dict[str, Any]]:
    """Two naps (0.05-0.3 s) for every echo, shuffled the same way every run."""
    rng = random.Random(7)
    items: list[dict[str, Any]] = [
        {"type": "nap", "payload": {"seconds": round(rng.uniform(0.05, 0.3), 3)}}
        if i % 3
        else {"type": "echo", "payload": {"i": i}}
        for i in range(count)
    ]
    rng.shuffle(items)
    return items


async def kill_mid_run(node: Node, log_path: Path, total: int) -> list[str]:
    """Kill ``node`` once it has finished some tasks and is running several; returns the
    tasks it was running when it died."""

    async def mid_run() -> bool:
        log = Log.read(log_path)
        return log.ended_by(node.pid) >= 30 and len(log.open_in(node.pid)) >= 2

    await until(f"node {node.pid} to be in the middle of its work", mid_run, timeout=30, every=0.01)
    node.kill()
    await node.process.wait()
    at_kill = Log.read(log_path)
    assert len(at_kill.ends) < total, "every task ended before the kill: nothing was tested"
    interrupted = at_kill.open_in(node.pid)
    assert interrupted, "the node was running nothing when it was killed"
    return interrupted


def check_reruns(twice: list[str], interrupted: list[str]) -> None:
    # Every task cut short ran again. Besides them, a task whose handler had returned but
    # whose outcome was still on its way to the store (in the worker's hands with the rest
    # of its prefetched tasks, or in the queue's outcome buffer) ran again too: that is
    # what "running" means to the store. Nothing the node did not hold may run twice.
    missing = sorted(set(interrupted) - set(twice))
    assert not missing, f"tasks cut short by the kill did not run again: {missing}"
    assert len(twice) <= WORKERS * PREFETCH + FLUSH_BATCH, f"{len(twice)} tasks ran twice"


async def test_sqlite_node_killed_mid_run_recovers_on_restart(tmp_path: Path) -> None:
    """A node on a SQLite file is killed; a new node on the same file finishes the work."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    log_path = tmp_path / "tasks.log"
    submitted = await submit(url, workload(TASKS))
    async with nodes(log_path) as start:
        first = await start(url)
        interrupted = await kill_mid_run(first, log_path, TASKS)
        second = await start(url)
        await until("every task to finish", lambda: all_finished(url, TASKS), timeout=45, every=0.1)
        await second.stop()
    tasks, history = await read_store(url)
    log = Log.read(log_path)
    twice = check_crash_recovery(
        submitted, tasks, history, log, killed=first.pid, survivor=second.pid
    )
    check_reruns(twice, interrupted)
    assert log.ended_by(second.pid) > 0


@pytest.mark.postgres
async def test_postgres_node_killed_mid_run_other_node_finishes(
    pg_url: str, tmp_path: Path
) -> None:
    """Two nodes share a database; one is killed; the other takes over its tasks once
    their leases expire (its janitor leads once the dead node's session is gone)."""
    log_path = tmp_path / "tasks.log"
    async with nodes(log_path) as start:
        doomed = await start(pg_url)
        survivor = await start(pg_url)
        submitted = await submit(pg_url, workload(TASKS))
        interrupted = await kill_mid_run(doomed, log_path, TASKS)
        await until(
            "every task to finish", lambda: all_finished(pg_url, TASKS), timeout=45, every=0.1
        )
        await survivor.stop()
    tasks, history = await read_store(pg_url)
    log = Log.read(log_path)
    twice = check_crash_recovery(
        submitted, tasks, history, log, killed=doomed.pid, survivor=survivor.pid
    )
    check_reruns(twice, interrupted)
    assert log.ended_by(survivor.pid) > 0


async def test_a_kill_costs_no_attempt_to_tasks_that_never_started(tmp_path: Path) -> None:
    """Tasks with one attempt each, a 2-worker node killed mid-run: only the tasks whose
    handlers were running in it end dead (their one attempt was spent); every task it had
    not started runs on the next node and completes."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    log_path = tmp_path / "tasks.log"
    items = [{"type": "nap", "payload": {"seconds": 0.3}, "max_attempts": 1} for _ in range(40)]
    submitted = await submit(url, items)
    async with nodes(log_path) as start:
        first = await start(url, "--workers", "2")

        async def some_ran() -> bool:
            log = Log.read(log_path)
            return log.ended_by(first.pid) >= 4 and len(log.open_in(first.pid)) >= 1

        await until("the node to be mid-run", some_ran, timeout=30, every=0.01)
        first.kill()
        await first.process.wait()
        cut_short = set(Log.read(log_path).open_in(first.pid))
        second = await start(url, "--workers", "4")
        await until("every task to end", lambda: all_finished(url, 40), timeout=45, every=0.1)
        await second.stop()
    tasks, _ = await read_store(url)
    log = Log.read(log_path)
    dead = {task_id for task_id, task in tasks.items() if task.status is TaskStatus.DEAD}
    # A handler that ended just before the kill, its outcome not yet committed, spent its
    # attempt in the killed node too: it may be dead, though the log says it ended.
    ran_there = {task_id for task_id, pids in log.starts.items() if first.pid in pids}
    assert cut_short <= ran_there
    assert dead <= ran_there, f"{len(dead - ran_there)} tasks died without running in the node"
    for task_id in set(submitted) - dead:
        assert tasks[task_id].status is TaskStatus.COMPLETED, (task_id, tasks[task_id].status)
        assert tasks[task_id].attempt == 1
        assert log.starts[task_id][-1] == second.pid or first.pid in log.ends[task_id]
