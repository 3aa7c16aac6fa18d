"""Built-in task types: ``echo`` and ``sleep`` for demos and tests, ``http_check`` for uptime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import trio
from typing_extensions import TypedDict  # pydantic needs it, not typing's, before 3.12

from .errors import ValidationError

if TYPE_CHECKING:
    from .context import TaskContext


async def echo(ctx: TaskContext, payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


#: Longest a built-in ``sleep`` sleeps, in seconds: an hour.
SLEEP_MAX_SECONDS = 3600.0
#: The ``max_duration`` of ``sleep``: its longest sleep, and a minute for its progress writes.
SLEEP_MAX_DURATION = SLEEP_MAX_SECONDS + 60.0


class SleepPayload(TypedDict):
    """The payload of ``sleep``: how many seconds to sleep (at most an hour)."""

    seconds: Annotated[float, pydantic.Field(ge=0, le=SLEEP_MAX_SECONDS, allow_inf_nan=False)]


async def sleep(ctx: TaskContext, payload: SleepPayload) -> dict[str, float]:
    """Sleep ``{"seconds": s}`` (cancellable), reporting progress in up to 10 steps."""
    seconds = payload["seconds"]
    steps = 10 if seconds > 0 else 1
    for step in range(1, steps + 1):
        await trio.sleep(seconds / steps)
        await ctx.progress(step / steps, f"slept {seconds * step / steps:g}s of {seconds:g}s")
    return {"slept": float(seconds)}


async def http_check(ctx: TaskContext, payload: Any) -> dict[str, Any]:
    """Request a URL and record whether it answered as expected, and how fast.

    Payload: ``{"url", "method"?: "GET", "timeout"?: 10, "expected_status"?: 200,
    "headers"?: {}}``. The check itself succeeds when it could be made: a target that is
    down gives ``{"ok": false, ...}`` with the reason, so schedules of checks make an
    uptime monitor (see ``trellis_http_check_up``).
    """
    import httpx

    url, method, timeout, expected, headers = _check_payload(payload)
    started = trio.current_time()
    status: int | None = None
    error: str | None = None
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            with trio.fail_after(timeout):
                response = await client.request(method, url, headers=headers)
        status = response.status_code
    except (httpx.TimeoutException, trio.TooSlowError):
        error = f"no answer within {timeout}s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = round((trio.current_time() - started) * 1000, 3)
    ok = status == expected
    if status is not None and not ok:
        error = f"expected status {expected}, got {status}"
    ctx.log.info("http check", url=url, status_code=status, latency_ms=latency_ms, ok=ok)
    return {"status_code": status, "latency_ms": latency_ms, "ok": ok, "error": error}


def _check_payload(payload: Any) -> tuple[str, str, float, int, dict[str, str]]:
    if not isinstance(payload, dict):
        raise ValidationError("http_check needs a payload object with a url", field="payload")
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("url must be an http:// or https:// URL", field="url")
    method = payload.get("method", "GET")
    if method not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        raise ValidationError(f"method {method!r} is not an HTTP method", field="method")
    timeout = payload.get("timeout", 10.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValidationError("timeout must be a number of seconds > 0", field="timeout")
    expected = payload.get("expected_status", 200)
    if not isinstance(expected, int) or isinstance(expected, bool) or not 100 <= expected <= 599:
        raise ValidationError(
            "expected_status must be an HTTP status code", field="expected_status"
        )
    headers = payload.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValidationError("headers must map strings to strings", field="headers")
    return url, method, float(timeout), expected, headers


#: The built-in task types, each a handler and its ``App.task`` options (``App`` adds them).
BUILTINS: tuple[tuple[Callable[[TaskContext, Any], Awaitable[Any]], Mapping[str, Any]], ...] = (
    (echo, {"name": "echo"}),
    (sleep, {"name": "sleep", "max_duration": SLEEP_MAX_DURATION}),
    (http_check, {"name": "http_check", "queue": "checks", "max_attempts": 1}),
)
