"""The work of ``bench/handlers.py``, in a module of its own: pool processes import process
handlers by name, which they cannot do from a script's ``__main__``."""

from __future__ import annotations

import time
from typing import Any


def work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def cpu_sync(ctx: Any, payload: dict[str, int]) -> int:
    return work(payload["n"])


def nap(ctx: Any, payload: None) -> None:
    time.sleep(0.05)
