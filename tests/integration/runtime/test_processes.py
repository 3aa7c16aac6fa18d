"""The process pool with real worker processes: results, failures, crashes, cancels."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import trio
from tests.integration.runtime import process_handlers as h

from trellis_actors.errors import ActorStopped, ValidationError
from trellis_actors.runtime.processes import CancelRun, ProcessOutcome, ProcessPool, RunInProcess

#: Real processes start in about a second; no test should take longer than this.
LIMIT = 20.0


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool processes import handlers by name from the parent's ``sys.path``, and pytest's
    importlib mode imports ``tests`` without putting the project's root there."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[3]))


@asynccontextmanager
async def running(size: int = 1) -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(size)
    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            yield pool
            pool.request_stop()


def run(
    handler: Callable[[Any, Any], Any],
    payload: Any = None,
    *,
    task: str = "t1",
    progress: Callable[[float, str | None], None] = lambda fraction, message: None,
) -> RunInProcess:
    return RunInProcess(
        job=f"{task}:1",
        handler=handler,
        payload=json.dumps(payload),
        task_id=task,
        type=handler.__name__,
        attempt=1,
        progress=progress,
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Started:
    """A progress callback that records the pid a ``hang`` job reports, and when."""

    def __init__(self) -> None:
        self.pid = 0
        self.event = trio.Event()

    def __call__(self, fraction: float, message: str | None) -> None:
        self.pid = int(message or 0)
        self.event.set()


class TestResults:
    async def test_cpu_bound(self) -> None:
        """A CPU-bound handler's result comes back as JSON text."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.count, {"n": 100_000}))

        assert outcome == ProcessOutcome(json.dumps(h.count(None, {"n": 100_000})), None, None)

    async def test_context(self) -> None:
        """The handler gets the payload from JSON and a context naming the attempt."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.describe, {"a": [1, 2]}, task="t7"))

        assert outcome.result is not None
        described = json.loads(outcome.result)
        assert described.pop("pid") != os.getpid()
        assert described == {
            "task_id": "t7",
            "type": "describe",
            "attempt": 1,
            "cancelled": False,
            "payload": {"a": [1, 2]},
        }

    async def test_none(self) -> None:
        """A handler that returns None gives a result of None."""
        async with running() as pool:
            assert await pool.ref.ask(run(h.nothing)) == ProcessOutcome(None, None, None)

    @pytest.mark.parametrize("handler", [h.a_set, h.nan])
    async def test_not_json(self, handler: Callable[[Any, Any], Any]) -> None:
        """A result that is not JSON is ResultNotSerializable, naming the task type."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(handler))

        assert (outcome.result, outcome.exception) == (None, None)
        assert outcome.error is not None
        assert outcome.error.type == "ResultNotSerializable"
        assert outcome.error.message.startswith(f"{handler.__name__} returned a value that is not")


class TestFailures:
    async def test_raises(self) -> None:
        """What the handler raises comes back with its type and message."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.fail, "no good"))

        assert (outcome.result, outcome.error) == (None, None)
        assert type(outcome.exception) is ValueError
        assert str(outcome.exception) == "no good"
        trace = "".join(traceback.format_exception(outcome.exception))
        assert 'process_handlers.py", line' in trace  # the traceback crossed too

    async def test_system_exit(self) -> None:
        """Even SystemExit is the job's exception, not the end of its process or the pool."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.leave, 2))
            after = await pool.ref.ask(run(h.count, {"n": 10}, task="t2"))

        assert type(outcome.exception) is SystemExit
        assert after.result == "285"
        assert pool.restarts == 0

    async def test_progress_out_of_range(self) -> None:
        """Progress outside 0..1 raises in the handler, as it does in an async one."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.overshoot))

        assert isinstance(outcome.exception, ValidationError)
        assert str(outcome.exception) == "progress must be between 0 and 1, got 1.5"

    async def test_raises_unpicklable(self) -> None:
        """An exception that cannot be pickled comes back as a RuntimeError naming it."""
        async with running() as pool:
            outcome = await pool.ref.ask(run(h.fail_oddly))

        assert type(outcome.exception) is RuntimeError
        assert str(outcome.exception) == "Unpicklable: 1/2"

    async def test_crash(self) -> None:
        """A process that dies is the job's WorkerCrashed; the pool replaces it."""
        async with running() as pool:
            crashed = await pool.ref.ask(run(h.crash, 3))
            after = await pool.ref.ask(run(h.count, {"n": 10}, task="t2"))
            details = pool.details()

        assert crashed.error is not None
        assert crashed.error.type == "WorkerCrashed"
        assert crashed.error.message == (
            "the process running crash died (exit code 3); the pool replaced it"
        )
        assert after.result == "285"
        assert details["restarts"] == 1


class TestCancel:
    async def test_cancel_kills_at_once(self) -> None:
        """CancelRun kills the job's process at once, answers nothing, and the pool serves
        the next job."""
        started = Started()
        async with running() as pool:
            hung = run(h.hang, 30.0, progress=started)
            await pool.ref.tell(hung)
            await started.event.wait()
            cancelled_at = trio.current_time()
            await pool.ref.tell(CancelRun(hung.job))
            after = await pool.ref.ask(run(h.count, {"n": 10}, task="t2"))
            took = trio.current_time() - cancelled_at
            details = pool.details()

        assert not hung.reply.is_set
        assert gone(started.pid)
        assert after.result == "285"
        assert took < 10  # a new process in about a second, not the 30 s sleep
        assert details["cancelled"] == 1

    async def test_cancel_unknown_job(self) -> None:
        """Cancelling a job that is not running does nothing."""
        async with running() as pool:
            await pool.ref.tell(CancelRun("nobody:1"))
            assert (await pool.ref.ask(run(h.count, {"n": 10}))).result == "285"


class TestReports:
    async def test_reaches_the_callback_before_the_reply(self) -> None:
        """Progress from the child reaches the callback, all of it before the outcome."""
        reports: list[tuple[float, str | None]] = []
        async with running() as pool:
            msg = run(h.report, progress=lambda f, m: reports.append((f, m)))
            outcome = await pool.ref.ask(msg)
            seen = list(reports)

        assert outcome.result == '"done"'
        assert seen == [(0.5, "half way"), (1.0, None)]

    async def test_log_events(self) -> None:
        """ctx.log in the process is logged by the pool, bound to the attempt."""
        with structlog.testing.capture_logs() as logs:
            async with running() as pool:
                await pool.ref.ask(run(h.chatty, task="t5"))

        working, wrong = (e for e in logs if e["event"] in ("working", "it went wrong"))
        bound = {"task_id": "t5", "task_type": "chatty", "attempt": 1}
        assert working == {"event": "working", "step": 1, "log_level": "info", **bound}
        assert wrong["log_level"] == "error"
        assert "KeyError: 'lost'" in wrong["exception"]


class TestConcurrency:
    @pytest.mark.parametrize(("size", "overlap"), [(1, False), (2, True)])
    async def test_size_bounds_concurrency(self, size: int, overlap: bool) -> None:
        """Two half-second jobs run one after the other with one process, together with
        two."""
        spans: list[list[float]] = []
        async with running(size) as pool:

            async def one(task: str) -> None:
                outcome = await pool.ref.ask(run(h.span, 0.5, task=task))
                assert outcome.result is not None
                spans.append(json.loads(outcome.result))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, "t1")
                nursery.start_soon(one, "t2")

        first, second = sorted(spans)
        assert (second[0] < first[1]) is overlap


class TestLifetime:
    async def test_details(self) -> None:
        """The pool's snapshot details: its size, busy processes and restarts."""
        started = Started()
        async with running(2) as pool:
            await pool.ref.tell(run(h.hang, 30.0, progress=started))
            await started.event.wait()
            details = pool.details()

        assert details == {"processes": 2, "busy": 1, "waiting": 0, "restarts": 0, "cancelled": 0}

    async def test_no_process_left(self) -> None:
        """Stopping the pool kills a running job's process (its asker gets ActorStopped)
        and ends every other process."""
        started = Started()
        pids: list[int] = []
        async with running(2) as pool:
            hung = run(h.hang, 30.0, progress=started)
            await pool.ref.tell(hung)
            await started.event.wait()
            outcome = await pool.ref.ask(run(h.describe, None, task="t2"))
            assert outcome.result is not None
            pids = [started.pid, json.loads(outcome.result)["pid"]]
            stopping_at = time.monotonic()

        assert time.monotonic() - stopping_at < 10
        assert len(set(pids)) == 2
        assert all(gone(pid) for pid in pids)
        assert multiprocessing.active_children() == []
        with pytest.raises(ActorStopped, match="stopped while running t1:1"):
            hung.reply.result()
