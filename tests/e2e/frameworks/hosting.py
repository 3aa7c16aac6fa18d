"""Serving the framework apps for real: a WSGI app in a thread, an ASGI app in a child
process, each on ``127.0.0.1:0`` with the bound address read back."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType

from flask import Flask
from tests.e2e.kit import ROOT, STARTUP_TIMEOUT, clean_env
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


class AsgiProcess:
    """An ASGI app served by ``python -m hypercorn`` with the asyncio worker in a child
    process; ``url`` is read from its log line ``Running on URL``."""

    def __init__(self, app: str, **env: str) -> None:
        command = [sys.executable, "-m", "hypercorn", "--worker-class", "asyncio"]
        self.process = subprocess.Popen(
            [*command, "--bind", "127.0.0.1:0", app],
            cwd=ROOT,
            env=clean_env(**env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="hypercorn-log", daemon=True).start()
        self.url = self._wait_for(r".*Running on (http://\S+)")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for(self, pattern: str) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.process.wait(timeout=10)
                raise AssertionError(
                    f"hypercorn exited ({self.process.returncode}) before listening:\n"
                    + "".join(self.log)
                )
            if found := re.match(pattern, line):
                return found.group(1)
        self.process.kill()
        self.process.wait(timeout=10)
        raise AssertionError("hypercorn did not start in time:\n" + "".join(self.log))

    def stop(self) -> int:
        """SIGTERM (hypercorn shuts down gracefully, running the lifespan's exit) and
        the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise
