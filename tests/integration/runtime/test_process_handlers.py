"""``executor="process"`` handlers through a whole runtime and its real process pool:
results, failures with their retry policy, crashes, timeouts that kill, progress."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
from tests.integration.runtime import process_handlers as h

from trellis_actors import App, TaskStatus, open_runtime

S = TaskStatus
LIMIT = 60.0


@pytest.fixture(autouse=True)
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool processes import handlers by name from the parent's ``sys.path``."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[3]))


def app() -> App:
    app = App()
    app.task(name="count", executor="process")(h.count)
    app.task(name="fail", executor="process", max_attempts=2)(h.fail)
    app.task(name="crash", executor="process", max_attempts=2)(h.crash)
    app.task(name="hang", executor="process", timeout=1, max_attempts=1)(h.hang)
    app.task(name="a_set", executor="process")(h.a_set)
    app.task(name="report", executor="process")(h.report)
    return app


async def test_process_handlers_through_a_runtime() -> None:
    """A result crosses as JSON; an exception fails the attempt with its own type and is
    retried; a process that dies is a WorkerCrashed attempt and the pool goes on; a
    timeout kills the process at once (TaskTimeout); a non-JSON result fails; progress
    from the process is stored; the pool shows in the actor tree."""
    with trio.fail_after(LIMIT):
        async with open_runtime(app(), workers=4, processes=2, lease=5) as rt:
            count = await rt.submit("count", {"n": 1000})
            fail = await rt.submit("fail", "no luck")
            crash = await rt.submit("crash", 3)
            started = trio.current_time()
            hang = await rt.submit("hang", 30.0)
            a_set = await rt.submit("a_set")
            report = await rt.submit("report")
            done = {t.type: await rt.wait(t.id) for t in (count, fail, crash, hang, a_set, report)}
            hung_for = trio.current_time() - started
            pool = rt.snapshot().find("processes")
            again = await rt.wait((await rt.submit("count", {"n": 10})).id)
    assert (done["count"].status, done["count"].result) == (
        S.COMPLETED,
        sum(i * i for i in range(1000)),
    )
    failed = done["fail"]
    assert failed.status is S.DEAD and failed.attempt == 2
    assert failed.error is not None and (failed.error.type, failed.error.message) == (
        "ValueError",
        "no luck",
    )
    crashed = done["crash"]
    assert crashed.status is S.DEAD and crashed.attempt == 2
    assert crashed.error is not None and crashed.error.type == "WorkerCrashed"
    assert done["hang"].error is not None and done["hang"].error.type == "TaskTimeout"
    assert hung_for < 20  # killed at its 1 s timeout, not slept out
    assert done["a_set"].error is not None
    assert done["a_set"].error.type == "ResultNotSerializable"
    assert (done["report"].status, done["report"].progress) == (S.COMPLETED, 1.0)
    assert again.status is S.COMPLETED
    assert pool is not None and pool.details is not None
    assert pool.details["processes"] == 2 and pool.details["restarts"] >= 2


SCRIPT = """
import trio
from trellis_actors import open_runtime
from handlers_here import app, count


async def main() -> None:
    async with open_runtime(app, processes=1) as rt:
        print("runtime opened", flush=True)
        done = await rt.wait((await rt.submit(count, 41, max_attempts=1)).id, timeout=60)
        print("task", done.status.value, flush=True)


trio.run(main)  # no `if __name__ == "__main__":` guard
"""
HANDLERS = """
from trellis_actors import App

app = App()


@app.task(executor="process")
def count(ctx, payload: int) -> int:
    return payload + 1
"""


def test_a_script_without_a_main_guard_starts_no_runtime_in_its_pool_processes(
    tmp_path: Path,
) -> None:
    """``spawn`` runs the parent's main module again in each pool process: a script that
    starts a runtime at import must not start another one in each of them (each would
    claim and run tasks of its own); it is refused there, saying what to do."""
    (tmp_path / "handlers_here.py").write_text(HANDLERS)
    (tmp_path / "script.py").write_text(SCRIPT)
    ran = subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    assert ran.stdout.count("runtime opened") == 1, ran.stdout
    assert "task dead" in ran.stdout  # its process could not start: the attempt failed
    advice = 'put the code that starts the runtime under `if __name__ == "__main__":`'
    assert advice in ran.stderr
