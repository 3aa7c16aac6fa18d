"""Another website cannot drive a server through its visitors' browsers: a page on a
second loopback origin tries a ``no-cors`` fetch with a ``text/plain`` JSON body and a
``<form enctype="text/plain">``; neither creates a task on a server without a token (the
default). A rebinding name (``Host: attacker.example``) is refused too."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.kit import Server

ATTACK = """<!doctype html><html><body>
<form id="form" method="POST" enctype="text/plain" action="{target}/tasks">
  <input name='{{"type": "echo", "payload": {{"tag": "{tag}-form", "pad": "' value='"}}}}'>
</form>
<script>
  window.fetched = fetch("{target}/tasks", {{
    method: "POST", mode: "no-cors",
    body: JSON.stringify({{type: "echo", payload: {{tag: "{tag}-fetch"}}}}),
  }}).then(() => "sent", (error) => "error: " + error);
</script>
</body></html>"""


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    """A server as `trellis serve` starts by default: no token."""
    running = Server("--store", "memory://", "--workers", "1")
    yield running
    assert running.stop() == 0, "".join(running.stderr)


@pytest.fixture
def attacker(open_server: Server) -> Iterator[tuple[str, str]]:
    """A page on another origin (``localhost`` on another port) aimed at the server."""
    tag = secrets.token_hex(4)
    page = ATTACK.format(target=open_server.url, tag=tag).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}/", tag
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def tags(server: Server) -> set[str]:
    items = httpx.get(
        f"{server.url}/tasks?type=echo&limit=1000&include=payload", timeout=10
    ).json()["items"]
    return {json.dumps(item["payload"]) for item in items}


def test_a_page_on_another_origin_creates_no_task(
    browser: Any, open_server: Server, attacker: tuple[str, str]
) -> None:
    url, tag = attacker
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        assert page.evaluate("window.fetched") == "sent"  # the browser sent it: opaque answer
        with page.expect_navigation():
            page.evaluate("document.getElementById('form').submit()")
        refusal = page.evaluate("document.body.innerText")
    finally:
        context.close()
    assert "cross_origin" in refusal or "unsupported_media_type" in refusal
    assert not [t for t in tags(open_server) if tag in t]


def test_a_rebinding_host_name_is_refused(open_server: Server) -> None:
    """A page on attacker.example whose name now resolves to 127.0.0.1 still sends its
    own name: neither reads nor writes are answered."""
    read = httpx.get(f"{open_server.url}/tasks", headers={"Host": "attacker.example"})
    write = httpx.post(
        f"{open_server.url}/tasks",
        json={"type": "echo", "payload": "rebound"},
        headers={"Host": "attacker.example:8080"},
    )
    assert (read.status_code, write.status_code) == (421, 421)
    assert '"rebound"' not in tags(open_server)
