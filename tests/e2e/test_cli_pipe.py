"""The ``trellis`` commands' output through a real pipe whose reader goes away."""

from __future__ import annotations

import subprocess
import sys

import httpx
from tests.e2e.kit import ROOT, Server, clean_env


class TestBrokenPipe:
    def test_list_into_head(self, server: Server) -> None:
        """``trellis tasks list | head -1`` over more rows than a pipe holds ends quietly:
        no BrokenPipeError traceback on stderr."""
        batch = [{"type": "echo", "delay": 3600, "queue": "piped"} for _ in range(1000)]
        assert httpx.post(f"{server.url}/tasks", json=batch, timeout=30).status_code == 201
        command = (
            f"{sys.executable} -m trellis_actors tasks list --queue piped --limit 1000 | head -1"
        )
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=ROOT,
            env=clean_env(TRELLIS_URL=server.url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.startswith("ID ") and result.stdout.count("\n") == 1
        assert "Traceback" not in result.stderr, result.stderr
        assert "BrokenPipe" not in result.stderr, result.stderr
        assert result.stderr == ""

    def test_reader_closes_after_one_line(self, server: Server) -> None:
        """A reader that takes one line and closes the pipe: exit 141, nothing on stderr."""
        batch = [{"type": "echo", "delay": 3600, "queue": "closed"} for _ in range(1000)]
        assert httpx.post(f"{server.url}/tasks", json=batch, timeout=30).status_code == 201
        command = ["tasks", "list", "--queue", "closed", "--limit", "1000"]
        process = subprocess.Popen(
            [sys.executable, "-m", "trellis_actors", *command],
            cwd=ROOT,
            env=clean_env(TRELLIS_URL=server.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith("ID ")
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 141
        assert stderr == ""
