"""Task types for the browser tests: one that takes its time, one that always fails.

Loaded by the server launcher as ``--app ui_tasks:app`` (this folder is on its path).
"""

from __future__ import annotations

from typing import Any

import trio

from trellis_actors import App, TaskContext, WorkflowContext

app = App()  # with the built-in echo and sleep


@app.task(name="slow")
async def slow(ctx: TaskContext, payload: Any) -> dict[str, float]:
    """Run for ``{"seconds": s}`` (default 30), reporting progress twenty times."""
    seconds = float(payload.get("seconds", 30)) if isinstance(payload, dict) else 30.0
    for step in range(1, 21):
        await trio.sleep(seconds / 20)
        await ctx.progress(step / 20, f"step {step} of 20")
    return {"took": seconds}


@app.task(name="always_fails", max_attempts=1)
async def always_fails(ctx: TaskContext, payload: Any) -> None:
    """Fail at once, every time: one attempt, then the dead letter."""
    raise RuntimeError(f"always fails (payload {payload!r})")


@app.workflow(name="ui_flow")
async def ui_flow(wf: WorkflowContext, payload: Any) -> dict[str, Any]:
    """A step, a wait for the signal ``approved``, then a step with its payload."""
    await wf.run("echo", {"hello": "world"})
    answer = await wf.wait_signal("approved")
    await wf.run("echo", {"answer": answer})
    return {"answer": answer}
