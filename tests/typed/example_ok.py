"""Typed use that mypy --strict accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.typed.typed_app import Email, Receipt, count, send_email

import trellis_actors as ta


async def produce(rt: ta.Runtime) -> int:
    task = await rt.submit(send_email, Email(to="a@b.c", subject="hi"), priority=3)
    done = await rt.wait(task, timeout=5)
    receipt: Receipt | None = done.result
    later = await rt.submit(count, 3, delay=10.0, idempotency_key="k", queue="q")
    numbers: list[int] | None = (await rt.wait(later)).result
    at = await rt.submit(count, 1, run_at=datetime(2030, 1, 1, tzinfo=UTC), max_attempts=2)
    by_name = await rt.submit("echo", {"anything": [1, 2]}, timeout=3.0)
    return (receipt.words if receipt else 0) + len(numbers or []) + len(at.id + by_name.id)
