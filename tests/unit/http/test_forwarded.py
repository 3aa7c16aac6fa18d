"""X-Forwarded-Proto and X-Forwarded-For, believed only from trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest

from trellis_actors.http._forwarded import Trusted, parse_allow, trust_forwarded


async def seen(allow: tuple[str, ...], client: str | None, headers: dict[str, str]) -> Any:
    """The scope the app sees for a request from ``client`` with ``headers``."""
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append(scope)

    scope = {
        "type": "http",
        "scheme": "http",
        "client": None if client is None else (client, 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await trust_forwarded(app, allow)(scope, None, None)
    return got[0]


TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


class TestForwarded:
    async def test_trusted_proxy(self) -> None:
        scope = await seen(("127.0.0.1",), "127.0.0.1", TLS)
        assert scope["scheme"] == "https" and scope["client"] == ("203.0.113.7", 0)

    async def test_untrusted_client_is_ignored(self) -> None:
        scope = await seen(("127.0.0.1",), "198.51.100.9", TLS)
        assert scope["scheme"] == "http" and scope["client"] == ("198.51.100.9", 5000)

    async def test_nothing_trusted_by_default(self) -> None:
        scope = await seen((), "127.0.0.1", TLS)
        assert scope["scheme"] == "http"

    async def test_networks_and_chains(self) -> None:
        """The client is the nearest address no trusted proxy vouches for."""
        headers = {
            "X-Forwarded-For": "1.2.3.4, 203.0.113.7, 10.0.0.2",
            "X-Forwarded-Proto": "https",
        }
        scope = await seen(("10.0.0.0/8",), "10.0.0.1", headers)
        assert scope["client"] == ("203.0.113.7", 0)

    async def test_star_trusts_everyone(self) -> None:
        assert (await seen(("*",), None, TLS))["scheme"] == "https"

    async def test_odd_proto_ignored(self) -> None:
        scope = await seen(("127.0.0.1",), "127.0.0.1", {"X-Forwarded-Proto": "gopher"})
        assert scope["scheme"] == "http"

    def test_bad_allow_list(self) -> None:
        with pytest.raises(ValueError, match="'nope' is not an IP address or network"):
            parse_allow("127.0.0.1, nope")
        assert parse_allow(" 127.0.0.1 ,::1") == ("127.0.0.1", "::1")
        assert "::1" in Trusted(["::1"]) and "127.0.0.1" not in Trusted(["::1"])
