"""Task types and helpers shared by the HTTP API tests."""

from __future__ import annotations

from typing import Any

import trio

from trellis_actors import App, TaskContext

TOKEN = "s3cret-token"


class Probe:
    """What the ``block`` task type saw: that it started, and that it was cancelled."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.stopped = trio.Event()


def make_app(probe: Probe) -> App:
    app = App()

    @app.task(max_attempts=1)
    async def fail(ctx: TaskContext, payload: Any) -> None:
        raise RuntimeError(f"failed on purpose: {payload}")

    @app.task
    async def block(ctx: TaskContext, payload: Any) -> None:
        """Wait until cancelled."""
        probe.started.set()
        try:
            await trio.sleep_forever()
        finally:
            probe.stopped.set()

    return app
