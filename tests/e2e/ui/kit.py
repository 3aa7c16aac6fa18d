"""What the browser tests share: the server handle, paths, and small helpers."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
SHOTS = ROOT / "screenshots"
#: The system Chromium (never a downloaded one); TRELLIS_CHROMIUM points elsewhere.
CHROMIUM = Path(os.environ.get("TRELLIS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds any expectation may take before it fails.
TIMEOUT = 10_000
START_TIMEOUT = 30.0


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where the browser must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    log: Path

    def submit(self, type: str, payload: Any = None, **fields: Any) -> dict[str, Any]:
        """Submit a task over HTTP, as a client would; returns the task as JSON."""
        body = {"type": type, "payload": payload, **fields}
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.post(f"{self.url}/tasks", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"ui-{name}.png"), full_page=full_page)


def unique(prefix: str) -> str:
    """A name no other test uses: tests share one server."""
    return f"{prefix}-{secrets.token_hex(3)}"
