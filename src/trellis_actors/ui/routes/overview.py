"""The overview: health, queue depths, workers, throughput and the latest failures.

Each part is a fragment of its own that HTMX polls, so the page stays live without reloads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quart import Response, url_for

from ...access.check import needs
from ...errors import TrellisError
from ...lifecycle import BACKLOG, TaskStatus
from ...runtime.messages import WorkerInfo
from ...stores.nodes import WorkerActivity
from .._blueprint import bp
from .._render import Notice, go, is_htmx, render, render_with_notice
from .._state import ui
from .._throughput import chart

FAILURES = 5


async def _health() -> dict[str, Any]:
    runtime = ui().runtime
    alive = await runtime.ping()
    return {
        "alive": alive,
        "ready": alive and runtime.running and not runtime.draining,
        "draining": runtime.draining,
        "store": runtime.store_url,
    }


async def _queues() -> dict[str, Any]:
    rows = []
    for queue in await ui().runtime.queues():
        per_status = queue.counts or {}
        full = {status.value: per_status.get(status.value, 0) for status in TaskStatus}
        depth = sum(full[s.value] for s in BACKLOG)
        rows.append({"name": queue.name, "depth": depth, "counts": full, "paused": queue.paused})
    return {"queues": rows, "statuses": [status.value for status in TaskStatus]}


@dataclass(frozen=True, slots=True)
class NodeWorkers:
    """One node's part of the workers card."""

    id: str
    this: bool  # the node serving this page
    state: str  # up, draining
    workers: Sequence[WorkerInfo | WorkerActivity]
    size: int
    busy: int


async def _workers() -> dict[str, Any]:
    """Every live node's workers: this node's as they are now, the others' as their last
    heartbeat said (the nodes registry). Lost nodes are counted, not shown."""
    runtime = ui().runtime
    here = await runtime.workers()
    busy_here = sum(1 for worker in here if worker.current_task is not None)
    state = "draining" if runtime.draining else "up"
    nodes = [NodeWorkers(runtime.node, True, state, here, len(here), busy_here)]
    lost = 0
    try:
        registry = await runtime.nodes()
    except TrellisError:  # the store is down: this node's workers still show
        registry = []
    for node in registry:
        if node.id == runtime.node:
            continue
        if node.state == "lost":
            lost += 1
            continue
        nodes.append(
            NodeWorkers(node.id, False, node.state, node.activity, node.workers, node.busy)
        )
    busy = sum(node.busy for node in nodes)
    return {
        "nodes": nodes,
        "busy": busy,
        "idle": sum(node.size for node in nodes) - busy,
        "done": sum(worker.tasks_done for node in nodes for worker in node.workers),
        "lost": lost,
    }


async def _throughput() -> dict[str, Any]:
    return {"chart": chart(ui().throughput.series())}


async def _failures() -> dict[str, Any]:
    runtime = ui().runtime
    found = [
        task
        for status in (TaskStatus.DEAD, TaskStatus.FAILED)
        for task in (await runtime.list(status=status, limit=FAILURES, include=())).items
    ]
    found.sort(key=lambda task: task.finished_at or task.updated_at, reverse=True)
    return {"failures": found[:FAILURES]}


PARTS: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "health": _health,
    "queues": _queues,
    "workers": _workers,
    "throughput": _throughput,
    "failures": _failures,
}


@bp.get("/")
@needs("read")
async def overview() -> Response:
    context: dict[str, Any] = {}
    for part in PARTS.values():
        context.update(await part())
    return await render("overview.html", **context)


@bp.get("/overview/<part>")
@needs("read")
async def overview_part(part: str) -> Response:
    if part not in PARTS:
        return await render("error.html", 404, title="Not found", message="No such part.")
    return await render(f"_{part}.html", **await PARTS[part]())


@bp.post("/queues/<name>/<action>")
@needs("operate")
async def queue_action(name: str, action: str) -> Response:
    """Pause or resume a queue, for every node."""
    runtime = ui().runtime
    try:
        match action:
            case "pause":
                await runtime.pause_queue(name)
                notice = Notice(True, f"Paused {name}: no node claims its tasks.")
            case "resume":
                await runtime.resume_queue(name)
                notice = Notice(True, f"Resumed {name}.")
            case _:
                return await render("error.html", 404, title="Not found", message="No action.")
    except TrellisError as exc:
        notice = Notice(False, str(exc))
    if not is_htmx():
        return go(url_for("trellis_ui.overview"))
    return await render_with_notice("_queues.html", "queues-notice", notice, **await _queues())
