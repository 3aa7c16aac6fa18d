"""Task types for black-box tests: nothing that reaches the network or runs for long.

Served with ``trellis serve --app tests.e2e.apps:app`` (from the repository root)."""

from __future__ import annotations

from typing import Any

from trellis_actors import App, TaskContext
from trellis_actors.builtin_tasks import echo

app = App(builtins=False)
app.task(echo, name="echo")


@app.task(max_attempts=1)
async def fail(ctx: TaskContext, payload: Any) -> None:
    """Fail at once: a task that ends dead."""
    raise RuntimeError("failed on purpose")
