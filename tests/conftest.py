"""Checks shared by every test tier.

Every trio test must leave no task, no child process and no thread behind: when its body
returns, nothing it started may still run, including tasks it started in pytest-trio's
``nursery`` fixture. Tasks owned by other fixtures are theirs to stop, and pytest-trio's own
tasks are left alone. A thread it started that is not a daemon, or any thread named
``trellis…`` (the loop watch, a handler thread still running), fails the test.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from inspect import iscoroutinefunction
from typing import Any

import pytest
import trio

# pytest-trio runs a test as "<test 'name'>" and each async fixture as "<fixture 'name'>",
# every one a task started by the bootstrap task, under trio's own init task.
_PYTEST_TRIO_STRUCTURE = frozenset(
    {
        "Runner.init",
        "EntryQueue.task",
        "_trio_test_runner_factory.<locals>._bootstrap_fixtures_and_run_test",
    }
)
_PYTEST_TRIO_FIXTURE = "TrioFixture.run"


def _qualname(task: trio.lowlevel.Task) -> str:
    code = getattr(task.coro, "cr_code", None)
    return code.co_qualname if code is not None else type(task.coro).__qualname__


def _children(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    for nursery in task.child_nurseries:
        yield from nursery.child_tasks


def _descendants(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    for child in _children(task):
        yield child
        yield from _descendants(child)


def leftover_tasks() -> list[trio.lowlevel.Task]:
    """Tasks alive now that belong neither to pytest-trio nor to a fixture."""
    me = trio.lowlevel.current_task()
    left: list[trio.lowlevel.Task] = list(_descendants(me))
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        for child in _children(task):
            name = _qualname(child)
            if child is me or name == _PYTEST_TRIO_FIXTURE:
                continue  # the test itself (checked above) or a fixture, which owns its tasks
            if name in _PYTEST_TRIO_STRUCTURE:
                pending.append(child)
            else:
                left.append(child)
    return left


#: How long a thread that is ending anyway (it has returned) may take to finish.
_THREAD_EXIT = 1.0


def thread_names() -> set[tuple[threading.Thread, str]]:
    """Every thread alive now, with its name."""
    return {(t, t.name) for t in threading.enumerate()}


def leftover_threads(before: set[tuple[threading.Thread, str]]) -> list[threading.Thread]:
    """Threads alive now, and not as they were in ``before`` (those belong to fixtures),
    that a test must not leave: ones named ``trellis…`` (a trio thread running a handler
    is renamed so), and non-daemon ones."""
    known = {thread for thread, _ in before}

    def bad(thread: threading.Thread) -> bool:
        if thread.name.startswith("trellis"):
            return (thread, thread.name) not in before
        return not thread.daemon and thread not in known

    deadline = time.monotonic() + _THREAD_EXIT
    left = [t for t in threading.enumerate() if bad(t)]
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in left if t.is_alive() and bad(t)]


def _checked(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run_and_check(**kwargs: Any) -> None:
        before = thread_names()
        await test(**kwargs)
        left = leftover_tasks()
        assert not left, f"the test left tasks running: {sorted(t.name for t in left)}"
        processes = multiprocessing.active_children()  # pool processes, reaped when done
        assert not processes, f"the test left processes running: {processes}"
        threads = leftover_threads(before)
        assert not threads, f"the test left threads running: {sorted(t.name for t in threads)}"

    return run_and_check


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Wrap every trio test in the leftover-task check; sync tests are skipped.

    This is a hook rather than an autouse async fixture because pytest-trio only runs the
    async fixtures a test names: an autouse one would silently never run.
    """
    if not isinstance(item, pytest.Function) or item.get_closest_marker("trio") is None:
        return (yield)
    hypothesis = getattr(item.obj, "hypothesis", None)
    if hypothesis is not None and iscoroutinefunction(hypothesis.inner_test):
        original, hypothesis.inner_test = hypothesis.inner_test, _checked(hypothesis.inner_test)
        try:
            return (yield)
        finally:
            hypothesis.inner_test = original
    if not iscoroutinefunction(item.obj):
        return (yield)
    original = item.obj
    item.obj = _checked(original)
    try:
        return (yield)
    finally:
        item.obj = original
