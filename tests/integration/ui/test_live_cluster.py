"""The UI's live stream (``/ui/live``) tells a page of another node's work: its moves are
read from the store's event log, not from this node's own transitions."""

from __future__ import annotations

import pytest
import trio

from trellis_actors import App, open_runtime
from trellis_actors.ui._live import CHANGED, Live

GUARD = 60  # seconds: a guard against a hang only, never a measure


@pytest.mark.postgres
async def test_a_task_page_hears_of_a_task_another_node_runs(pg_url: str) -> None:
    """The node serving the page runs nothing; a second node runs the task: the page's
    stream still says ``changed`` as the task moves."""
    live = Live()
    async with (
        open_runtime(App(), store=pg_url, workers=0) as serving,
        open_runtime(App(), store=pg_url, workers=1, queues=["far"]) as working,
    ):
        task = await serving.submit("echo", {"hi": 1}, queue="far", delay=3600)
        stream = live.changes(serving, task.id)
        with trio.fail_after(GUARD):
            first = await stream.__anext__()
            assert b": subscribed" in first
            await working.cancel(task.id)  # a move made by the other node alone
            while (chunk := await stream.__anext__()) != CHANGED:
                assert chunk == b": keep-alive\n\n"
        live.close()
        await stream.aclose()
