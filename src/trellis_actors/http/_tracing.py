"""A server span around every HTTP request, continuing the caller's trace if it sent one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .. import tracing

App = TypeVar("App", bound=Callable[..., Awaitable[None]])


def traced(app: App) -> App:
    """Wrap an ASGI app so each HTTP request runs inside a span (when tracing is on)."""

    async def wrapper(
        scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope.get("type") != "http" or not tracing.enabled():
            await app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        method = scope.get("method", "GET")
        status: dict[str, int] = {}

        async def send_status(message: Any) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message.get("status", 0))
            await send(message)

        with tracing.span(
            f"{method} {scope.get('path', '')}",
            parent=headers or None,
            kind="server",
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        ) as span:
            await app(scope, receive, send_status)
            if span is not None and "code" in status:
                span.set_attribute("http.response.status_code", status["code"])

    return wrapper  # type: ignore[return-value]  # same ASGI signature as ``app``
