"""Built-in task types: ``echo`` and ``sleep``, for demos and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from .errors import ValidationError

if TYPE_CHECKING:
    from .app import App
    from .context import TaskContext


async def echo(ctx: TaskContext, payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


async def sleep(ctx: TaskContext, payload: Any) -> dict[str, float]:
    """Sleep ``{"seconds": s}`` (cancellable), reporting progress in up to 10 steps."""
    seconds = payload.get("seconds") if isinstance(payload, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ValidationError("sleep needs a payload {'seconds': s} with s >= 0", field="seconds")
    steps = 10 if seconds > 0 else 1
    for step in range(1, steps + 1):
        await trio.sleep(seconds / steps)
        await ctx.progress(step / steps, f"slept {seconds * step / steps:g}s of {seconds:g}s")
    return {"slept": float(seconds)}


def register_builtins(app: App) -> None:
    app.task(echo, name="echo")
    app.task(sleep, name="sleep")
