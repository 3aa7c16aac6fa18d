"""Serve a Trellis runtime with the web UI on a free port; print the URL once listening.

    python tests/e2e/ui/serve_ui.py --app ui_tasks:app [--store memory://] [--token T]

A stand-in for ``trellis serve`` (API + UI + workers) while that is being built: a plain
QuartTrio app with :func:`register_ui`, plus ``POST /e2e/tasks`` (JSON ``{"type",
"payload", ...}``) standing in for the API's ``POST /tasks``. Stops gracefully on SIGTERM
or SIGINT: the server first, then the runtime.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio

from trellis_actors import App, Runtime, TrellisError
from trellis_actors.ui import register_ui


def load_app(spec: str) -> App:
    module, _, attr = spec.partition(":")
    loaded = getattr(importlib.import_module(module), attr or "app")
    assert isinstance(loaded, App), f"{spec} is not a trellis_actors.App"
    return loaded


def web_app(runtime: Runtime, token: str | None) -> QuartTrio:
    web = QuartTrio("trellis_e2e_ui")
    register_ui(web, runtime, token=token)

    @web.post("/e2e/tasks")
    async def submit() -> tuple[dict[str, Any], int]:
        body = dict(await request.get_json())
        try:
            task = await runtime.submit(body.pop("type"), body.pop("payload", None), **body)
        except TrellisError as exc:
            return {"error": str(exc)}, 400
        return task.to_dict(), 201

    return web


async def main(args: argparse.Namespace) -> None:
    app = load_app(args.app)
    runtime = Runtime(app, store=args.store, workers=args.workers, grace_period=2.0)
    config = Config()
    config.bind = [args.bind]
    config.graceful_timeout = 2.0
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        try:
            stop = trio.Event()
            async with trio.open_nursery() as server:
                web = web_app(runtime, args.token)
                urls = await server.start(partial(serve, web, config, shutdown_trigger=stop.wait))
                print(urls[0], flush=True)
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        break
                stop.set()
        finally:
            with trio.CancelScope(shield=True):
                await runtime.shutdown()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", required=True, help="module:attr of a trellis_actors.App")
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--bind", default="127.0.0.1:0")
    parser.add_argument("--token", default=None)
    parser.add_argument("--workers", type=int, default=4)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: the URL
    trio.run(main, parse(sys.argv[1:]))
