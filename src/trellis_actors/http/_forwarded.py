"""Trusting a reverse proxy: ``X-Forwarded-Proto`` and ``X-Forwarded-For``, but only from
the proxies' own addresses (``--forwarded-allow-ips``), as Uvicorn and Gunicorn do.

From any other client the headers are ignored: anybody can send them. From a trusted one,
the request's scheme becomes the forwarded one (so a login cookie behind a TLS-ending proxy
is ``Secure``), and its client address the nearest address in ``X-Forwarded-For`` that is
not itself a trusted proxy (so the login rate limit counts real clients).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

App = TypeVar("App", bound=Callable[..., Awaitable[None]])
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Trusted:
    """Addresses and networks (``10.0.0.0/8``) of trusted proxies; ``*`` trusts any."""

    def __init__(self, allow: Iterable[str]) -> None:
        items = [item.strip() for item in allow if item.strip()]
        self.everyone = "*" in items
        self.networks: list[Network] = []
        for item in items:
            if item == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"forwarded-allow-ips: {item!r} is not an IP address or network "
                    "(e.g. 127.0.0.1, 10.0.0.0/8, or * for any)"
                ) from None

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def __contains__(self, address: str | None) -> bool:
        if self.everyone:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def parse_allow(text: str | None) -> tuple[str, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` to its items (checked)."""
    items = tuple(item.strip() for item in (text or "").split(",") if item.strip())
    Trusted(items)  # raises ValueError on a bad item
    return items


def trust_forwarded(app: App, allow: Iterable[str]) -> App:
    """Wrap an ASGI app so that requests from ``allow`` may say their scheme and client."""
    trusted = Trusted(allow)
    if not trusted:
        return app

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            client = scope.get("client")
            if (client[0] if client else None) in trusted:
                scope = _forwarded(scope, trusted)
        await app(scope, receive, send)

    return wrapper  # type: ignore[return-value]  # same ASGI signature as ``app``


def _forwarded(scope: Any, trusted: Trusted) -> Any:
    proto: str | None = None
    chain: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
        elif name == b"x-forwarded-for":
            chain.extend(part.strip() for part in value.decode("latin-1").split(","))
    changed = dict(scope)
    if proto in ("http", "https"):
        websocket = scope["type"] == "websocket"
        changed["scheme"] = {"http": "ws", "https": "wss"}[proto] if websocket else proto
    chain = [address for address in chain if address]
    if chain:
        client = chain[0]
        for address in reversed(chain):  # the nearest hop no trusted proxy vouches for
            if address not in trusted:
                client = address
                break
        changed["client"] = (client, 0)
    return changed
