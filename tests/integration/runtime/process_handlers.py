"""Handlers for the process pool tests: module-level, so a pool process can import them."""

from __future__ import annotations

import os
import time
from typing import Any


def count(ctx: Any, payload: dict[str, int]) -> int:
    """Pure-Python work: the sum of the squares below ``n``."""
    return sum(i * i for i in range(payload["n"]))


def fail(ctx: Any, payload: str) -> None:
    raise ValueError(payload)


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling calls Unpicklable(msg): fails
        super().__init__(f"{a}/{b}")


def fail_oddly(ctx: Any, payload: None) -> None:
    raise Unpicklable(1, 2)


def crash(ctx: Any, payload: int) -> None:
    os._exit(payload)


def hang(ctx: Any, payload: float) -> None:
    """Say which process it is, then sleep."""
    ctx.progress(0.0, str(os.getpid()))
    time.sleep(payload)


def a_set(ctx: Any, payload: None) -> Any:  # no contract: the set is not JSON
    return {1, 2}


def nan(ctx: Any, payload: None) -> float:
    return float("nan")


def report(ctx: Any, payload: None) -> str:
    ctx.progress(0.5, "half way")
    ctx.progress(1.0, None)
    return "done"


def describe(ctx: Any, payload: Any) -> dict[str, Any]:
    ctx.log.debug("describing", payload=payload)
    return {
        "task_id": ctx.task_id,
        "type": ctx.type,
        "attempt": ctx.attempt,
        "cancelled": ctx.cancelled(),
        "payload": payload,
        "pid": os.getpid(),
    }


def nothing(ctx: Any, payload: None) -> None:
    return None


def span(ctx: Any, payload: float) -> list[float]:
    """Sleep ``payload`` seconds; return when it started and ended (wall clock)."""
    start = time.time()
    time.sleep(payload)
    return [start, time.time()]


def leave(ctx: Any, payload: int) -> None:
    raise SystemExit(payload)


def overshoot(ctx: Any, payload: None) -> None:
    ctx.progress(1.5)


def chatty(ctx: Any, payload: None) -> None:
    ctx.log.info("working", step=1)
    try:
        raise KeyError("lost")
    except KeyError:
        ctx.log.exception("it went wrong")
