"""``/health`` answers at once while every worker runs a blocking ``def`` handler."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import trio

from trellis_actors import App, TaskContext, TaskStatus, open_runtime
from trellis_actors.http import ServerConfig, serve

WORKERS = 4


async def test_health_answers_while_threads_block() -> None:
    """Over a real Hypercorn server: with all workers in ``time.sleep``, each of ten
    ``/health`` requests is answered within 50 ms."""
    app = App(builtins=False)
    inside = threading.Semaphore(0)

    @app.task
    def nap(ctx: TaskContext, payload: Any) -> None:
        inside.release()
        time.sleep(1.5)

    async with (
        open_runtime(app, workers=WORKERS) as rt,
        trio.open_nursery() as nursery,
    ):
        urls = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0"))
        tasks = [await rt.submit("nap") for _ in range(WORKERS)]

        def all_inside() -> None:
            for _ in range(WORKERS):
                assert inside.acquire(timeout=10)

        await trio.to_thread.run_sync(all_inside)
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            await client.get("/health")  # the connection, opened before timing
            took = []
            for _ in range(10):
                began = time.perf_counter()
                response = await client.get("/health")
                took.append(time.perf_counter() - began)
                assert response.status_code == 200
        assert max(took) < 0.05, took
        for task in tasks:  # and they were all still running meanwhile
            assert (await rt.get(task.id)).status is TaskStatus.RUNNING
        for task in tasks:
            assert (await rt.wait(task.id, timeout=10)).status is TaskStatus.COMPLETED
        nursery.cancel_scope.cancel()
