"""A node process: a runtime, the HTTP API (``trellis serve``) or not (``trellis worker``),
and signals. SIGINT or SIGTERM drains gracefully; a second one ends the grace period at
once (what has finished is still committed); a third exits without waiting."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import structlog
import trio

from ..access.tokens import from_sources
from ..runtime.runtime import Runtime
from ..ui import SessionPolicy
from ._forwarded import parse_allow
from .server import ServerConfig, serve

log = structlog.get_logger("trellis.node")


@dataclass(frozen=True, slots=True)
class NodePlan:
    """What ``trellis serve`` / ``trellis worker`` were asked to run."""

    runtime: Runtime  # built, not yet running
    store_shown: str
    server: ServerConfig | None  # None: workers only


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The server settings from ``trellis serve`` arguments (ValueError or
    ConfigurationError when invalid). Tokens come from ``--token-file`` (or
    ``TRELLIS_TOKEN_FILE``), ``TRELLIS_API_TOKEN`` and ``--token``, all together."""
    tokens = from_sources(
        token=args.token or None,
        file=args.token_file or None,
        env_token=os.environ.get("TRELLIS_API_TOKEN") or None,
    )
    return ServerConfig(
        bind=args.bind,
        metrics_public=args.metrics_public,
        max_body=max(1, args.max_body),
        grace_period=min(5.0, args.grace_period),
        tokens=tokens,
        forwarded_allow_ips=parse_allow(args.forwarded_allow_ips),
        sessions=SessionPolicy(idle=args.session_idle, absolute=args.session_max_age),
        allowed_hosts=tuple(args.allowed_host),
        cors_origins=tuple(args.cors_origin),
        insecure_no_auth=args.insecure_no_auth,
        max_connections=max(1, args.max_connections),
        max_event_streams=max(1, args.max_event_streams),
        max_page_bytes=max(1, args.max_page_bytes),
    )


async def run_node(plan: NodePlan) -> int:
    """Run until a signal, then drain; returns the exit status (0 after a graceful stop)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            return await _run(plan, signals)
        except BaseExceptionGroup as group:
            found, rest = group.split(Exception)
            if found is None or rest is not None:
                raise  # KeyboardInterrupt, SystemExit: not ours to turn into a message
            error: BaseException = found
            while isinstance(error, BaseExceptionGroup):
                error = error.exceptions[0]
        except Exception as exc:  # a store that cannot open, an address in use, ...
            error = exc
        log.error("node failed", error=repr(error), exc_info=error)
        print(f"error: the node on {plan.store_shown} stopped: {error}", file=sys.stderr)
        return 1


async def _run(plan: NodePlan, signals: AsyncIterator[int]) -> int:
    runtime = plan.runtime
    stopping = trio.Event()
    http_done = trio.Event()
    forced = False

    async def watch_signals(scope: trio.CancelScope) -> None:
        nonlocal forced
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stopping.is_set():
                log.info("stopping: draining", signal=name)
                runtime.mark_draining()  # readiness goes false first
                stopping.set()
            elif not forced:
                # The grace period ends now: handlers are cancelled and their tasks given
                # back, but what has finished is still committed before the node exits.
                log.warning("second signal: stopping now", signal=name)
                forced = True
                http_scope.cancel()
                runtime.hurry()
            else:
                log.warning("third signal: exiting without waiting", signal=name)
                scope.cancel()

    http_scope = trio.CancelScope()

    async def serve_http(config: ServerConfig, *, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            with http_scope:
                await serve(
                    runtime, config, shutdown_trigger=stopping.wait, task_status=task_status
                )
        finally:
            http_done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_signals, nursery.cancel_scope)
        await nursery.start(runtime.run)
        print(f"store: {plan.store_shown}", flush=True)
        print(f"workers: {runtime.config.workers}", flush=True)
        if plan.server is not None:
            urls = await nursery.start(partial(serve_http, plan.server))
            for url in urls:
                print(f"listening on {url}  (API docs: {url}/docs)", flush=True)
        else:
            http_done.set()
            print("worker node running (no HTTP API); Ctrl-C to stop", flush=True)
        await stopping.wait()
        await http_done.wait()  # the API stops first: no request reaches a stopped runtime
        await runtime.shutdown()
        nursery.cancel_scope.cancel()  # the signal watcher
    if forced:
        print("stopped at once: running tasks were interrupted", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0
