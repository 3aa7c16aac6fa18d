"""Black-box helpers: real ``trellis serve`` processes on ``127.0.0.1:0``, and the CLI.

A server's address is read from its stdout (``listening on URL``); stopping one sends
SIGTERM and expects exit status 0 (a graceful drain).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token"
STARTUP_TIMEOUT = 30.0


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without TRELLIS_* variables (so that none leaks into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env.update(extra)
    return env


class Child:
    """A child process that prints its address once it listens: ``url`` is read from the
    first line of its stdout (or, with ``ready_on="stderr"``, its log) matching ``ready``."""

    def __init__(
        self,
        argv: list[str],
        *,
        ready: str,
        ready_on: str = "stdout",
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = " ".join(argv[1:4])
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env or clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._signalled = False
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._logs: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True).start()
        self.url = self._wait_for(ready, self._lines if ready_on == "stdout" else self._logs)

    def _read(self, stream: object, is_stdout: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            (self.stdout if is_stdout else self.stderr).append(line)
            (self._lines if is_stdout else self._logs).put(line)
        (self._lines if is_stdout else self._logs).put(None)

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """The next log line (stderr) that contains ``text``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._logs.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}:\n" + "".join(self.stderr))

    def _wait_for(self, pattern: str, lines: queue.Queue[str | None]) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.process.wait(timeout=10)
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}) before listening:\n"
                    + "".join(self.stderr)
                )
            if found := re.match(pattern, line):
                return found.group(1)
        self.process.kill()
        self.process.wait(timeout=10)
        raise AssertionError(f"{self.name} did not start in time:\n" + "".join(self.stderr))

    def terminate(self, signum: int = signal.SIGTERM) -> None:
        """Ask the process to stop (once: a second signal stops a server at once)."""
        self._signalled = True
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the process (unless done already) and return its exit status once it has
        drained."""
        if self.process.poll() is None and not self._signalled:
            self.terminate(signum)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise

    @property
    def output(self) -> str:
        return "".join(self.stdout)


class Server(Child):
    """A ``trellis serve`` child process; ``url`` is where it listens."""

    def __init__(
        self,
        *args: str,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = ("serve", "--bind", "127.0.0.1:0"),
        ready: str = r"^listening on (\S+)",
    ) -> None:
        argv = [sys.executable, "-m", "trellis_actors", *command, *args]
        super().__init__(argv, ready=ready, cwd=cwd, env=env)


def trellis(
    *args: str, url: str | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``trellis ARGS`` (as ``python -m trellis_actors``) and capture its output."""
    extra = {"TRELLIS_URL": url} if url else {}
    return subprocess.run(
        [sys.executable, "-m", "trellis_actors", *args],
        cwd=ROOT,
        env=clean_env(**extra, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_main(*args: str) -> int:
    """``trellis ARGS`` in this process (argparse exits for --help and usage errors)."""
    from trellis_actors.cli import main

    try:
        return main(list(args))
    except SystemExit as exit:
        return int(exit.code or 0)
