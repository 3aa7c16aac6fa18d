"""Workflows for black-box tests: their steps leave marks in a folder, so that a test
can count how often each step ran to completion, and can hold a step running while it
kills the node.

Served with ``trellis serve --app tests.e2e.workflow_app:app``; the folder is the
``TRELLIS_TEST_MARKS`` environment variable of the server (no marks without it).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel

from trellis_actors import App, Backoff, TaskContext, WorkflowContext
from trellis_actors.builtin_tasks import echo

app = App(builtins=False)
app.task(echo, name="echo")
MARKS = "TRELLIS_TEST_MARKS"


class Mark(BaseModel):
    """A step's name (unique within a test) and whether its first start holds it."""

    name: str
    hold: bool = False


def _marks() -> Path | None:
    folder = os.environ.get(MARKS)
    return None if folder is None else Path(folder)


def completions(folder: Path, name: str) -> int:
    """How many times the step ``name`` ran to completion."""
    done = folder / f"done-{name}"
    return len(done.read_text().splitlines()) if done.exists() else 0


@app.task(max_attempts=10, backoff=Backoff(initial=0.05, maximum=0.2))
async def step(ctx: TaskContext, mark: Mark) -> str:
    """Mark a completion. Held on its first start (``hold``): it runs until the node is
    killed, and runs to completion when started again."""
    folder = _marks()
    if folder is not None:
        started = folder / f"started-{mark.name}"
        first = not started.exists()
        started.touch()
        if first and mark.hold:
            print(f"holding step {mark.name}", file=sys.stderr, flush=True)
            await trio.sleep_forever()
        with (folder / f"done-{mark.name}").open("a") as done:
            done.write(f"{ctx.task_id} {ctx.attempt}\n")
    return mark.name


class Plan(BaseModel):
    """The journey of a crash test: ``key`` names its steps; ``hold`` the steps whose
    first start holds; ``sleep`` how long it sleeps (seconds)."""

    key: str
    hold: list[str] = []
    sleep: float = 0.0


@app.workflow(max_attempts=10, backoff=Backoff(initial=0.05, maximum=0.2))
async def journey(wf: WorkflowContext, plan: Plan) -> list[Any]:
    """Every kind of waiting: a step, a sleep, a signal, then a gather of two steps."""

    def mark(name: str) -> Mark:
        return Mark(name=f"{plan.key}-{name}", hold=name in plan.hold)

    first = await wf.run(step, mark("a"))
    await wf.sleep(plan.sleep)
    signal = await wf.wait_signal("go")
    both = await wf.gather(wf.run(step, mark("b")), wf.run(step, mark("c")))
    return [first, signal, *both]


@app.task
async def double(ctx: TaskContext, n: int) -> int:
    return 2 * n


@app.workflow
async def approval(wf: WorkflowContext, n: int) -> dict[str, Any]:
    """A step, a short sleep, then a signal awaited for up to a day."""
    doubled = await wf.run(double, n)
    await wf.sleep(0.1)
    answer = await wf.wait_signal("approved", timeout=timedelta(days=1))
    return {"doubled": doubled, "answer": answer}


@app.workflow(max_attempts=10, backoff=Backoff(initial=0.05, maximum=0.2))
async def fan(wf: WorkflowContext, key: str) -> list[str]:
    """A step, then three at once: for many workflows on several nodes."""
    first = await wf.run(step, Mark(name=f"{key}-0"))
    rest = await wf.gather(*(wf.run(step, Mark(name=f"{key}-{i}")) for i in (1, 2, 3)))
    return [first, *rest]
