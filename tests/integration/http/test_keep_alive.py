"""An early answer leaves its keep-alive connection usable.

A request answered before its body was read (a 413 for a body over the limit, sized or
chunked, a 401, a 404) is followed by a GET on the same connection, over a real Hypercorn
server and a real client with a short timeout: the GET is answered at once, on the same
connection; a body too long to wait for gets ``Connection: close`` instead, and the GET
goes on a new connection. Errors found in a body that was read (not JSON, a wrong content
type) are held to the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import trio

from trellis_actors import open_runtime
from trellis_actors.http import ServerConfig, serve
from trellis_actors.http import server as http_server

TOKEN = "keep-alive-token"
JSON = {"Content-Type": "application/json"}
TIMEOUT = 5.0  # seconds: a connection left stuck shows as a ReadTimeout


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    """A node with a token (the GETs used are public) and the default 1 MiB body limit."""
    async with open_runtime(workers=1) as rt, trio.open_nursery() as nursery:
        urls = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0", token=TOKEN))
        yield urls[0]
        nursery.cancel_scope.cancel()


def chunks(size: int, count: int) -> Iterator[bytes]:
    """A body of unknown length (sent chunked)."""
    for _ in range(count):
        yield b"x" * size


Send = Callable[[httpx.Client], httpx.Response]
AUTH = {"Authorization": f"Bearer {TOKEN}", **JSON}
EARLY: dict[str, tuple[Send, int]] = {
    "413, 3 MB": (lambda c: c.post("/tasks", content=b"x" * 3_000_000, headers=AUTH), 413),
    "413, chunked": (lambda c: c.post("/tasks", content=chunks(500_000, 6), headers=AUTH), 413),
    "401 with a body": (lambda c: c.post("/tasks", content=b"x" * 500_000, headers=JSON), 401),
    "400, not JSON": (lambda c: c.post("/tasks", content=b"{" * 500_000, headers=AUTH), 400),
    "404 with a body": (lambda c: c.post("/nowhere", content=b"x" * 500_000, headers=AUTH), 404),
    "wrong content type": (
        lambda c: c.post(
            "/tasks", content=b"x" * 500_000, headers={**AUTH, "Content-Type": "text/plain"}
        ),
        415,
    ),
}


def two_requests(base_url: str, first: Send) -> tuple[httpx.Response, Any, httpx.Response, Any]:
    """``first``, then ``GET /health``, on one client: each answer and the client address
    of the connection that carried it (noted while the answer is still open)."""
    addresses: list[Any] = []

    def note(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        addresses.append(stream.get_extra_info("client_addr"))

    with httpx.Client(base_url=base_url, timeout=TIMEOUT, event_hooks={"response": [note]}) as c:
        answer = first(c)
        after = c.get("/health")
    return answer, addresses[0], after, addresses[1]


@pytest.mark.parametrize("case", list(EARLY))
async def test_the_next_request_on_the_connection_is_answered(base_url: str, case: str) -> None:
    """The early answer, then a GET on the same (kept-alive) connection."""
    first, status = EARLY[case]
    answer, address, after, address_after = await trio.to_thread.run_sync(
        two_requests, base_url, first
    )
    assert answer.status_code == status, answer.text
    assert answer.headers.get("connection") != "close"
    assert after.status_code == 200
    assert address_after == address, "the GET went on a new connection"


async def test_a_body_too_long_to_wait_for_closes_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More than the bound still to come: ``Connection: close``; the GET still answered."""
    async with open_runtime(workers=1) as rt, trio.open_nursery() as nursery:
        monkeypatch.setattr(http_server, "DRAIN_AT_MOST", 0, raising=False)
        config = ServerConfig(bind="127.0.0.1:0", max_body=64 * 1024)  # waits for 128 KiB
        urls = await nursery.start(serve, rt, config)
        first: Send = lambda c: c.post("/tasks", content=b"x" * 1_000_000, headers=JSON)  # noqa: E731
        answer, _, after, _ = await trio.to_thread.run_sync(two_requests, urls[0], first)
        nursery.cancel_scope.cancel()
    assert answer.status_code == 413
    assert answer.headers["connection"] == "close"
    assert after.status_code == 200
