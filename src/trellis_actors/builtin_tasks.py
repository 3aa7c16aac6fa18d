"""Built-in task types: ``echo`` and ``sleep`` for demos and tests.

``http_check`` is not among them: it is opt-in (see :mod:`trellis_actors.http_check`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import trio
from typing_extensions import TypedDict  # pydantic needs it, not typing's, before 3.12

if TYPE_CHECKING:
    from .context import TaskContext


async def echo(ctx: TaskContext, payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


#: Longest a built-in ``sleep`` sleeps, in seconds: an hour.
SLEEP_MAX_SECONDS = 3600.0
#: The ``max_duration`` of ``sleep``: its longest sleep, and a minute for its progress writes.
SLEEP_MAX_DURATION = SLEEP_MAX_SECONDS + 60.0


class SleepPayload(TypedDict):
    """The payload of ``sleep``: how many seconds to sleep (at most an hour)."""

    seconds: Annotated[float, pydantic.Field(ge=0, le=SLEEP_MAX_SECONDS, allow_inf_nan=False)]


async def sleep(ctx: TaskContext, payload: SleepPayload) -> dict[str, float]:
    """Sleep ``{"seconds": s}`` (cancellable), reporting progress in up to 10 steps."""
    seconds = payload["seconds"]
    steps = 10 if seconds > 0 else 1
    for step in range(1, steps + 1):
        await trio.sleep(seconds / steps)
        await ctx.progress(step / steps, f"slept {seconds * step / steps:g}s of {seconds:g}s")
    return {"slept": float(seconds)}


#: The built-in task types, each a handler and its ``App.task`` options (``App`` adds them).
BUILTINS: tuple[tuple[Callable[[TaskContext, Any], Awaitable[Any]], Mapping[str, Any]], ...] = (
    (echo, {"name": "echo"}),
    (sleep, {"name": "sleep", "max_duration": SLEEP_MAX_DURATION}),
)
