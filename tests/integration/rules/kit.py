"""What the input-rule tests share: a served runtime, and the supervision tree's restarts."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from trellis_actors import Runtime


@dataclass(frozen=True)
class Served:
    runtime: Runtime
    client: httpx.AsyncClient


def restarts(rt: Runtime) -> dict[str, int]:
    """Restarts of every actor that has restarted (none, when no input reached a store)."""
    return {actor.name: actor.restarts for actor in rt.snapshot().walk() if actor.restarts}
