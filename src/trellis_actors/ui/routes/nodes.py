"""The nodes of the cluster: every node sharing this store, as its last heartbeat said."""

from __future__ import annotations

from typing import Any

from quart import Response

from ...access.check import needs
from ...errors import TrellisError
from .._blueprint import bp
from .._render import render
from .._state import ui


async def _nodes() -> dict[str, Any]:
    runtime = ui().runtime
    try:
        return {"nodes": await runtime.nodes(), "this": runtime.node, "error": None}
    except TrellisError as exc:  # the store is down: say so, the page still renders
        return {"nodes": [], "this": runtime.node, "error": str(exc)}


@bp.get("/nodes")
@needs("read")
async def nodes() -> Response:
    return await render("nodes.html", **await _nodes())


@bp.get("/nodes/table")
@needs("read")
async def nodes_table() -> Response:
    return await render("_nodes_table.html", **await _nodes())
