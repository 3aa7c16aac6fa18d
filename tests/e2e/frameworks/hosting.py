"""Serving the framework apps for real: a WSGI app in a thread, an ASGI app in a child
process, each on ``127.0.0.1:0`` with the bound address read back."""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from flask import Flask
from tests.e2e.kit import Child, clean_env
from werkzeug.serving import make_server


class WsgiThread:
    """A Flask app served by werkzeug's threaded server in a thread of this process."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="werkzeug-test-server", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> WsgiThread:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()  # returns once serve_forever has
        self._thread.join(timeout=10)
        self._server.server_close()
        assert not self._thread.is_alive(), "the werkzeug server did not stop"


class AsgiProcess(Child):
    """An ASGI app served by ``python -m hypercorn`` with the asyncio worker in a child
    process; ``url`` is read from its log line ``Running on URL``."""

    def __init__(self, app: str, **env: str) -> None:
        command = [sys.executable, "-m", "hypercorn", "--worker-class", "asyncio"]
        super().__init__(
            [*command, "--bind", "127.0.0.1:0", app],
            ready=r".*Running on (http://\S+)",
            ready_on="stderr",
            env=clean_env(**env),
        )

    @property
    def log(self) -> list[str]:
        return self.stderr
