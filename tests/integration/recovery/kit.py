"""Helpers for the recovery tests: node processes, their shared log, and the store's view.

Waiting on another *process* has no event to wait on, so :func:`until` polls, with a small
sleep between looks and a deadline that fails the test with what it was waiting for.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import trio
from tests.integration.recovery.recovery_app import app

from trellis_actors import Task, TaskEvent, TaskStatus, open_runtime
from trellis_actors.lifecycle import TERMINAL
from trellis_actors.stores import TaskFilter, open_store

HERE = Path(__file__).resolve().parent
NODE = HERE / "node.py"
T = TypeVar("T")


async def until(
    what: str, check: Callable[[], Awaitable[T]], *, timeout: float, every: float = 0.05
) -> T:
    """``check()``'s first truthy answer; fails after ``timeout`` seconds of falsy ones."""
    with trio.move_on_after(timeout):
        # Polling is the only way to watch another process's files and rows.
        while not (found := await check()):  # noqa: ASYNC110
            await trio.sleep(every)
        return found
    raise AssertionError(f"gave up after {timeout}s waiting for {what}")


# -- the log ------------------------------------------------------------------------------
@dataclass
class Log:
    """The shared log file, read whole: who started and ended which task."""

    starts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    ready: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Log:
        log = cls()
        text = path.read_text() if path.exists() else ""
        for line in text.split("\n")[:-1]:  # a line still being written has no newline yet
            word, pid, what = line.split(" ")
            match word:
                case "start":
                    log.starts[what].append(int(pid))
                case "end":
                    log.ends[what].append(int(pid))
                case "ready":
                    log.ready.append(int(pid))
                case "stopped":
                    log.stopped.append(int(pid))
                case _:
                    raise AssertionError(f"unexpected log line {line!r}")
        return log

    def ended_by(self, pid: int) -> int:
        return sum(pids.count(pid) for pids in self.ends.values())

    def open_in(self, pid: int) -> list[str]:
        """Tasks ``pid`` started and did not end (running now, or when it died)."""
        return [
            task_id
            for task_id, pids in self.starts.items()
            if pid in pids and pid not in self.ends.get(task_id, [])
        ]


# -- node processes -----------------------------------------------------------------------
class Node:
    """One ``node.py`` child process; its stdout and stderr go to a file beside the log."""

    def __init__(self, process: trio.Process, output: Path, log: Path) -> None:
        self.process = process
        self.output = output
        self.log = log
        self.pid = process.pid

    async def ready(self, timeout: float = 30.0) -> None:
        """Return once the node logged ``ready``; fail if it exits first."""

        async def logged_ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"node {self.pid} exited ({self.process.returncode}) before it was "
                    f"ready:\n{self.output_text()}"
                )
            return self.pid in Log.read(self.log).ready

        await until(f"node {self.pid} to be ready", logged_ready, timeout=timeout)

    def output_text(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; the node's leases stay behind in the store."""
        self.process.kill()

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then expect a clean exit (status 0) within ``timeout`` seconds."""
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout):
            code = await self.process.wait()
            assert code == 0, f"node {self.pid} exited {code}:\n{self.output_text()}"
            return
        self.process.kill()
        raise AssertionError(f"node {self.pid} did not stop within {timeout}s")


@asynccontextmanager
async def nodes(log: Path) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    """``start(store_url, *options)`` starts a node and returns once it is ready
    (``wait=False``: at once; then ``await node.ready()``).

    Every node still alive at the end is killed.
    """
    started: list[Node] = []

    async def start(url: str, *options: str, wait: bool = True) -> Node:
        output = log.with_name(f"node-{len(started)}.out")
        with output.open("wb") as out:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(NODE), url, str(log), *options],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        node = Node(process, output, log)
        started.append(node)
        if wait:
            await node.ready()
        return node

    try:
        yield start
    finally:
        with trio.CancelScope(shield=True):
            for node in started:
                if node.process.poll() is None:
                    node.process.kill()
                await node.process.wait()


# -- the store ----------------------------------------------------------------------------
async def submit(url: str, items: list[dict[str, Any]], chunk: int = 500) -> list[str]:
    """Submit through a short-lived runtime with no workers; the new tasks' ids."""
    ids: list[str] = []
    async with open_runtime(app, store=url, workers=0) as rt:
        for start in range(0, len(items), chunk):
            ids += [task.id for task in await rt.submit_many(items[start : start + chunk])]
    return ids


def status_counts(url: str) -> dict[str, int]:
    """Tasks per status, read straight from the database (never through a runtime)."""
    query = "SELECT status, count(*) FROM trellis_tasks GROUP BY status"
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute(query).fetchall())
    with psycopg.connect(url, connect_timeout=5) as conn:
        return dict(conn.execute(query).fetchall())


async def all_finished(url: str, total: int) -> bool:
    """True once ``total`` tasks have ended (completed, failed, dead or cancelled)."""
    counts = await trio.to_thread.run_sync(status_counts, url)
    return sum(counts.get(status.value, 0) for status in TERMINAL) >= total


async def read_store(
    url: str, *, history: bool = True
) -> tuple[dict[str, Task], dict[str, list[TaskEvent]]]:
    """Every task in the store, and (unless told not to) each one's history, through the
    store protocol."""
    store = open_store(url)
    await store.open()
    try:
        tasks: dict[str, Task] = {}
        cursor = None
        while True:
            page = await store.list_tasks(TaskFilter(), 1000, cursor)
            tasks.update((task.id, task) for task in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        events = {task_id: await store.events(task_id) for task_id in tasks if history}
    finally:
        await store.close()
    return tasks, events


def claims(url: str) -> dict[str, int]:
    """How often each task was claimed (moved to running), read straight from the database."""
    query = (
        "SELECT task_id, count(*) FROM trellis_events WHERE to_status = 'running' GROUP BY task_id"
    )
    with psycopg.connect(url, connect_timeout=5) as conn:
        return {str(task_id): n for task_id, n in conn.execute(query).fetchall()}


def lease_recoveries(events: list[TaskEvent]) -> int:
    """How often the task's lease expired and the janitor took it back."""
    return sum(
        1
        for event in events
        if event.from_status is TaskStatus.RUNNING and "lease held by" in (event.detail or "")
    )


def check_crash_recovery(
    submitted: list[str],
    tasks: dict[str, Task],
    history: dict[str, list[TaskEvent]],
    log: Log,
    *,
    killed: int,
    survivor: int,
) -> list[str]:
    """Assert what a crash may and may not do; returns the tasks that ran twice.

    At least once, and no more than the crash explains: every task completed and none is
    missing; a task ran twice only if its first run was in the killed process and the
    store took it back from that process's expired lease; every last run ended.
    """
    assert sorted(tasks) == sorted(submitted), "the store lost or invented tasks"
    unfinished = {
        t.id: t.status.value for t in tasks.values() if t.status is not TaskStatus.COMPLETED
    }
    assert not unfinished, f"tasks did not complete: {unfinished}"
    never_started = [task_id for task_id in submitted if task_id not in log.starts]
    assert not never_started, f"{len(never_started)} tasks never started"
    twice = []
    for task_id in submitted:
        starts, ends, events = log.starts[task_id], log.ends.get(task_id, []), history[task_id]
        ran = [e for e in events if e.to_status is TaskStatus.RUNNING]
        completions = [e for e in events if e.to_status is TaskStatus.COMPLETED]
        assert len(completions) == 1, f"{task_id} completed {len(completions)} times"
        assert ends and ends[-1] == starts[-1], f"{task_id}'s last run did not end: {starts} {ends}"
        attempt = tasks[task_id].attempt
        if len(starts) == 1:
            assert ends == starts, f"{task_id} started once, ended {ends}"
            # Claimed by the killed node but never started there: its lease ran out and
            # it went back to the queue as it was; the crash cost it no attempt.
            assert len(ran) == 1 and lease_recoveries(events) == 0, (task_id, events)
            assert attempt == 1, f"{task_id} started once but counts {attempt} attempts"
            continue
        twice.append(task_id)
        assert starts == [killed, survivor], f"{task_id} ran in {starts}: more than the crash"
        # The first run was cut short, or its outcome was not yet committed at the kill.
        # If its start was committed, the store took it back from the expired lease (an
        # attempt spent); if not, the store still had it claimed, not running.
        recovered = lease_recoveries(events)
        assert (recovered, len(ran), attempt) in ((1, 2, 2), (0, 1, 1)), (task_id, events)
        assert ends[-1] == survivor
    return twice
