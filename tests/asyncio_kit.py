"""Running asyncio code from a test, whatever else the test session runs.

Playwright's synchronous API (the browser tests) keeps an asyncio loop marked as running
in the main thread while its browser is open, and ``asyncio.run`` refuses to start there.
Each asyncio scenario therefore runs in a fresh thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` in a new thread; returns its result or raises its error."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(main()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="asyncio-scenario")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
