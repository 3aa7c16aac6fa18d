"""What the node is doing: queues, workers, task types, the actor tree, health, metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client.exposition import choose_encoder
from quart import Blueprint, Response, request
from quart_schema import document_response

from ..._time import iso
from ...actors import ActorSnapshot
from ...decisions import QueueState
from ...errors import RuntimeNotRunning, TrellisError
from ...lifecycle import BACKLOG, TaskStatus
from ...runtime.runtime import Runtime
from .._encode import json_response
from .._state import api
from ..auth import METRICS, needs
from ..openapi import media_type
from ..schemas import (
    ActorOut,
    ErrorOut,
    HealthOut,
    NodeList,
    QueueList,
    QueueOut,
    ReadyOut,
    TaskTypeList,
    WorkerList,
)

bp = Blueprint("system", __name__)


@bp.get("/queues")
@needs("read")
@document_response(QueueList)
async def queues() -> Response:
    """Every queue that holds tasks or was paused: depth, tasks per status, paused."""
    return json_response({"items": [queue_out(q) for q in await api().runtime.queues()]})


@bp.post("/queues/<name>/pause")
@needs("operate")
@document_response(QueueOut)
@document_response(ErrorOut, 400)
async def pause_queue(name: str) -> Response:
    """Pause a queue on every node: its tasks stay queued (submissions are still taken)
    and tasks already running finish. Pausing a paused queue changes nothing."""
    return json_response(queue_out(await api().runtime.pause_queue(name)))


@bp.post("/queues/<name>/resume")
@needs("operate")
@document_response(QueueOut)
@document_response(ErrorOut, 400)
async def resume_queue(name: str) -> Response:
    """Resume a queue: every node claims its tasks again."""
    return json_response(queue_out(await api().runtime.resume_queue(name)))


def queue_out(queue: QueueState) -> dict[str, Any]:
    per_status = queue.counts or {}
    full = {status.value: per_status.get(status.value, 0) for status in TaskStatus}
    return {
        "name": queue.name,
        "depth": sum(full[status.value] for status in BACKLOG),
        "counts": full,
        "paused": queue.paused,
        "paused_at": None if queue.paused_at is None else iso(queue.paused_at),
    }


@bp.get("/workers")
@needs("read")
@document_response(WorkerList)
async def workers() -> Response:
    """Each worker of every node not lost: its state, the task in its hands, and tasks
    done. This node's workers are read live; other nodes' as of their last heartbeat."""
    runtime = api().runtime
    activity = {info.name: info for info in await runtime.workers()}
    pool = runtime.snapshot().find("workers")
    items = []
    for actor in pool.children if pool is not None else ():
        info = activity.get(actor.name)
        items.append(
            {
                "name": actor.name,
                "node": runtime.node,
                "state": actor.state,
                "current_task": info.current_task if info else None,
                "current_type": info.current_type if info else None,
                "tasks_done": info.tasks_done if info else 0,
                "restarts": actor.restarts,
            }
        )
    for node in await runtime.nodes():
        if node.id == runtime.node or node.state == "lost":
            continue
        items.extend(
            {**worker.to_dict(), "node": node.id, "state": node.state, "restarts": None}
            for worker in node.activity
        )
    return json_response({"items": items})


@bp.get("/nodes")
@needs("read")
@document_response(NodeList)
async def nodes() -> Response:
    """Every node of the cluster (nodes sharing this store), as its last heartbeat said:
    up, draining, or lost (not seen for three heartbeats)."""
    return json_response({"items": [node.to_dict() for node in await api().runtime.nodes()]})


@bp.get("/task-types")
@needs("read")
@document_response(TaskTypeList)
async def task_types() -> Response:
    """The registered task types and their policies."""
    types = await api().runtime.task_types()
    return json_response({"items": [task_type.to_dict() for task_type in types]})


@bp.get("/debug")
@needs("read")
@document_response(ActorOut)
async def debug() -> Response:
    """The live supervision tree: every actor's state, restarts, mailbox and children."""
    return json_response(api().runtime.snapshot().to_dict())


@bp.get("/health")
@needs("public")
@document_response(HealthOut)
async def health() -> Response:
    """Alive: answers 200 as long as the server's event loop runs. Never needs a token."""
    return json_response({"status": "alive"})


@bp.get("/readyz")
@needs("public")
@document_response(ReadyOut)
@document_response(ReadyOut, 503)
async def readyz() -> Response:
    """Ready to take work: the store answers, the root supervisor runs, no drain is under
    way, and every readiness check of the App passed its last run. 200 when ready, else
    503; the body says which check failed. Never needs a token."""
    runtime = api().runtime
    try:
        root: ActorSnapshot | None = runtime.snapshot()
    except RuntimeNotRunning:
        root = None
    supervisor = root.state if root is not None else "stopped"
    store = root is not None and await _ping(runtime)
    draining = runtime.draining
    checks = await _checks(runtime) if root is not None else {}
    ready = (
        store
        and supervisor == "running"
        and not draining
        and all(answer == "ok" for answer in checks.values())
    )
    body = {
        "ready": ready,
        "store": store,
        "supervisor": supervisor,
        "draining": draining,
        "checks": checks,
    }
    return json_response(body, 200 if ready else 503)


@bp.get("/metrics")
@needs(METRICS)
@media_type(
    ("text/plain", "application/openmetrics-text"),
    "Prometheus text exposition format; OpenMetrics when the Accept header asks for it.",
)
async def metrics() -> Response:
    """Prometheus metrics of this node."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    state = api()
    if state.metrics is not None:
        await state.metrics.refresh(state.runtime)
    return Response(encoder(state.registry), 200, content_type=content_type)


async def _ping(runtime: Runtime) -> bool:
    try:
        return await runtime.ping()
    except TrellisError:  # stopped, or the store actor is gone
        return False


async def _checks(runtime: Runtime) -> dict[str, str]:
    """Each readiness check's last answer: ``ok``, or why not."""
    if not runtime.app.readiness_checks:
        return {}
    try:
        results = await runtime.readiness()
    except TrellisError:  # the node actor is restarting: not known to be ready
        return {check.name: "unknown" for check in runtime.app.readiness_checks}
    return {result.name: "ok" if result.ok else result.error or "failed" for result in results}
