"""A server span around every HTTP request, continuing the caller's trace if it sent one.

The span is named as the HTTP conventions ask: ``GET /tasks/{task_id}`` — the method and
the route template (also its ``http.route``), never the raw path, whose ids would make
every name new; a request no route matched is just ``GET``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import Quart, Response, request

from .. import tracing

App = TypeVar("App", bound=Callable[..., Awaitable[None]])

_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


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
            method,  # until the app names its route (see ``name_by_route``)
            parent=headers or None,
            kind="server",
            attributes={
                "http.request.method": method,
                "url.path": scope.get("path", ""),
                "url.scheme": scope.get("scheme", "http"),
            },
        ) as span:
            await app(scope, receive, send_status)
            if span is not None and "code" in status:
                span.set_attribute("http.response.status_code", status["code"])
                if status["code"] >= 500:
                    span.set_status(tracing.error_status())

    return wrapper  # type: ignore[return-value]  # same ASGI signature as ``app``


def route_template(rule: str) -> str:
    """A Quart rule as the conventions write a route: ``/tasks/<task_id>`` is
    ``/tasks/{task_id}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def name_by_route(app: Quart) -> None:
    """Name each request's server span (made by :func:`traced`) by its route template."""

    @app.after_request
    async def name_span(response: Response) -> Response:
        rule = request.url_rule
        if rule is not None:
            route = route_template(rule.rule)
            tracing.rename_current(f"{request.method} {route}", {"http.route": route})
        return response
