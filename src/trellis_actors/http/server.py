"""Serving the API with Hypercorn as a child task of the caller's nursery::

    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        urls = await nursery.start(serve, runtime, ServerConfig(bind="127.0.0.1:0"))

Shutdown is graceful: when ``shutdown_trigger`` returns, the server stops accepting
connections, ends event streams, and gives open requests ``grace_period`` seconds.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from prometheus_client import CollectorRegistry
from quart import Blueprint

from ..access.tokens import Tokens
from ..observability.metrics import Metrics
from ..rules import MAX_PAGE_BYTES
from ..runtime.runtime import Runtime
from ..ui import SessionPolicy
from ._encode import encode
from ._forwarded import parse_allow, trust_forwarded
from ._state import DEFAULT_MAX_EVENT_STREAMS, state_of
from ._tracing import name_by_route, traced
from .app import DEFAULT_MAX_BODY, create_app
from .auth import Auth
from .guard import Guard

DEFAULT_BIND = "127.0.0.1:8080"
#: Most requests a server has in progress at once, by default.
DEFAULT_MAX_CONNECTIONS = 1000
#: Seconds a client refused for want of room is asked to wait.
RETRY_AFTER = 5
#: Most bytes of a request body left unread by an early answer that are read and dropped
#: to keep the connection (at least this, or twice the body limit); see :func:`finish_bodies`.
DRAIN_AT_MOST = 8 * 1024 * 1024
#: Longest a client is waited on to send the rest of a body nobody reads.
DRAIN_TIMEOUT = 30.0

App = TypeVar("App", bound=Callable[..., Awaitable[None]])


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where and how the API listens. ``bind`` is ``HOST:PORT`` (port 0: any free one)."""

    bind: str = DEFAULT_BIND
    token: str | None = None  # one admin token (``tokens`` may hold more)
    metrics_public: bool = False
    max_body: int = DEFAULT_MAX_BODY
    grace_period: float = 5.0
    tokens: Tokens = field(default_factory=Tokens)
    #: Proxies whose X-Forwarded-Proto/-For are believed (addresses, networks, or ``*``).
    forwarded_allow_ips: tuple[str, ...] = ()
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    #: Host names served besides IP addresses, localhost and the bind host.
    allowed_hosts: tuple[str, ...] = ()
    #: Origins whose pages may call the API (CORS).
    cors_origins: tuple[str, ...] = ()
    #: Serve a non-loopback address without a token all the same.
    insecure_no_auth: bool = False
    #: Most requests in progress at once (an open event stream counts until it ends);
    #: more are answered 503 with ``Retry-After``, and their connection is closed.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Most event streams (``GET /events``) open at once; more are answered 503.
    max_event_streams: int = DEFAULT_MAX_EVENT_STREAMS
    #: Most bytes in the body of one page of ``GET /tasks``.
    max_page_bytes: int = MAX_PAGE_BYTES

    def __post_init__(self) -> None:
        check_bind(self.bind)
        parse_allow(",".join(self.forwarded_allow_ips))
        if self.grace_period < 0:
            raise ValueError("grace_period must be >= 0 seconds")
        for name in ("max_connections", "max_event_streams", "max_page_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        no_tokens = self.token is None and not self.tokens
        if no_tokens and not self.insecure_no_auth and not is_loopback(self.bind):
            raise ValueError(
                f"refusing to serve {self.bind} without an API token: anyone who can reach "
                "that address could submit, cancel and purge tasks. Set tokens "
                "(TRELLIS_TOKEN_FILE or TRELLIS_API_TOKEN), bind to 127.0.0.1, or pass "
                "--insecure-no-auth if "
                "something in front of Trellis authenticates every request"
            )
        self.guard()  # a bad origin is refused now, not at the first request

    def guard(self) -> Guard:
        """The Host and Origin checks for this configuration."""
        return Guard.of(self.bind, self.allowed_hosts, self.cors_origins)


def is_loopback(bind: str) -> bool:
    """Whether ``HOST:PORT`` listens on a loopback address only."""
    host = bind.rpartition(":")[0].strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to, maybe public


def check_bind(bind: str) -> None:
    """Raise ValueError unless ``bind`` is ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bind address {bind!r} is not HOST:PORT, e.g. 127.0.0.1:8080")


async def serve(
    runtime: Runtime,
    config: ServerConfig = ServerConfig(),
    *,
    registry: CollectorRegistry | None = None,
    blueprints: Iterable[Blueprint] = (),
    metrics: Metrics | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API of ``runtime`` until ``shutdown_trigger`` returns (or until cancelled).

    Started (``nursery.start``) once listening, with the bound URLs, e.g.
    ``["http://127.0.0.1:41235"]``: the real port when ``bind`` asked for port 0.
    """
    if metrics is None and registry is None:
        metrics = Metrics()
    app = create_app(
        runtime,
        registry=registry,
        auth=Auth(config.token, metrics_public=config.metrics_public, tokens=config.tokens),
        max_body=config.max_body,
        blueprints=blueprints,
        metrics=metrics,
        sessions=config.sessions,
        guard=config.guard(),
        max_page_bytes=config.max_page_bytes,
        max_event_streams=config.max_event_streams,
    )
    drain = max(DRAIN_AT_MOST, 2 * config.max_body)
    name_by_route(app)
    inner = trust_forwarded(app.asgi_app, config.forwarded_allow_ips)
    app.asgi_app = finish_bodies(  # type: ignore[method-assign]
        limit_requests(traced(inner), config.max_connections), drain
    )
    state = state_of(app.extensions)
    hypercorn = Config()
    hypercorn.bind = [config.bind]
    hypercorn.graceful_timeout = config.grace_period
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")

    async def trigger() -> None:
        if shutdown_trigger is None:
            await trio.sleep_forever()
        else:
            await shutdown_trigger()
        state.close()  # event streams end now rather than at the grace deadline

    async with trio.open_nursery() as nursery:
        if metrics is not None:
            await nursery.start(metrics.run, runtime)
        await hypercorn_serve(app, hypercorn, shutdown_trigger=trigger, task_status=task_status)
        nursery.cancel_scope.cancel()


def limit_requests(app: App, most: int) -> App:
    """Wrap an ASGI app so that at most ``most`` HTTP requests are in progress at once
    (an event stream is one until it ends); past that, a request is answered 503 with
    ``Retry-After`` and ``Connection: close``, without reaching the app.

    Hypercorn has no cap on connections: this bounds what they can hold (a handler, a
    stream, its buffers). A connection between requests holds none of that, and
    Hypercorn closes it once idle for its keep-alive timeout (5 seconds).
    """
    active = 0
    refusal = encode(
        {
            "error": {
                "code": "too_many_connections",
                "message": f"this server serves at most {most} requests at once; try again later",
            }
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(refusal)).encode()),
        (b"retry-after", str(RETRY_AFTER).encode()),
        (b"connection", b"close"),
    ]

    async def wrapper(
        scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        nonlocal active
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        if active >= most:
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": refusal})
            return
        active += 1
        try:
            await app(scope, receive, send)
        finally:
            active -= 1

    return wrapper  # type: ignore[return-value]  # same ASGI signature as ``app``


def finish_bodies(app: App, limit: int) -> App:
    """Wrap an ASGI app so that a request answered before its body was read (a 413 for a
    body over the limit, a 401, a 404) leaves its keep-alive connection usable.

    Hypercorn stops reading a connection while a request body waits for the app, and
    closing one whose body is still coming can be cut short when Quart, seeing the
    request over, cancels the answer: either way the next request on that connection is
    never read, and its client waits until it times out. So such an answer is held back
    until the rest of the body has been read (Quart reads it while it answers, and drops
    what is over its limit), for up to :data:`DRAIN_TIMEOUT`: the client, which may not
    read before it has sent everything, then gets it whole, and the connection is ready
    for the next request. An answer to a body with more than ``limit``
    bytes still to come also says ``Connection: close``, so that the client sends its
    next request on a new connection; a close is never cut short. (The body is read all
    the same, for the same time at most: a client that is still sending when the
    connection closes may not read the answer.)
    """

    async def wrapper(
        scope: Any, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        length = _content_length(scope) if scope.get("type") == "http" else 0
        if length == 0:  # no body (or not HTTP): nothing to finish
            await app(scope, receive, send)
            return
        received = 0
        finished = trio.Event()
        held: list[Any] = []  # the answer's start, held back while the body still comes
        closing = False

        async def receive_counted() -> Any:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()
            else:  # http.disconnect
                finished.set()
            return message

        async def send_checked(message: Any) -> None:
            nonlocal closing
            if finished.is_set() and not held:
                await send(message)
                return
            if message.get("type") == "http.response.start":
                if length is not None and length - received > limit:
                    closing = True
                    headers = [*message.get("headers", ()), (b"connection", b"close")]
                    message = {**message, "headers": headers}
                held.append(message)
                return
            last = not message.get("more_body", False)
            if last:  # the answer's end, before the request's: wait for the rest
                with trio.move_on_after(DRAIN_TIMEOUT):
                    await finished.wait()
            with trio.CancelScope(shield=last and (closing or not finished.is_set())):
                while held:
                    await send(held.pop())
                await send(message)

        await app(scope, receive_counted, send_checked)

    return wrapper  # type: ignore[return-value]  # same ASGI signature as ``app``


def _content_length(scope: Any) -> int | None:
    """The request's Content-Length; 0 for a request without a body; None if unknown."""
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
        if name == b"transfer-encoding":
            chunked = True
    return None if chunked else 0
