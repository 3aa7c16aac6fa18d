"""The live supervision tree: every actor's state, restarts, last error and mailbox."""

from __future__ import annotations

import math
from typing import Any

from quart import Response

from ...access.check import needs
from ...errors import ConfigurationError
from .._blueprint import bp
from .._render import render
from .._state import ui


def _tree() -> dict[str, Any]:
    try:
        return {"root": ui().runtime.snapshot(), "inf": math.inf}
    except ConfigurationError:
        return {"root": None, "inf": math.inf}


@bp.get("/actors")
@needs("read")
async def actors() -> Response:
    return await render("actors.html", **_tree())


@bp.get("/actors/tree")
@needs("read")
async def actor_tree() -> Response:
    return await render("_actor_tree.html", **_tree())
