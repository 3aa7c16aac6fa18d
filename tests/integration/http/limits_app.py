"""A task type under a cluster-wide rate limit, for ``trellis serve`` and ``trellis worker``
processes sharing one PostgreSQL database. Each task returns the pid that ran it."""

from __future__ import annotations

import os
from typing import Any

from trellis_actors import App, TaskContext

app = App(builtins=False)


@app.task(rate_limit="5/s", max_attempts=1)
async def limited(ctx: TaskContext, payload: Any) -> int:
    return os.getpid()
