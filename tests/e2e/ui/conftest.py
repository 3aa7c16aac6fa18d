"""Browser tests of the web UI: a real server process, a real Chromium, no mocks.

The server is a real ``trellis serve`` started in ONE fixture, :func:`server`; tasks are
submitted through its API (``POST /tasks``). Chromium comes from the
system (``/usr/bin/chromium``); without it the tests skip, except in CI (``CI=true``), where
they fail. Each test saves screenshots under ``screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.ui.kit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HERE,
    START_TIMEOUT,
    TIMEOUT,
    Server,
    unavailable,
)


def _read_url(process: subprocess.Popen[str], log: Path) -> str:
    """The address in ``trellis serve``'s "listening on URL" line."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = process.stdout.readline()
            if not line:
                break  # the process ended
            if line.startswith("listening on "):
                return line.split()[2]
    raise RuntimeError(f"the UI server did not start; its log:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Trellis node with the UI on 127.0.0.1:<free port>: a token, the test tasks, and
    a SQLite file (the default store of ``trellis serve``)."""
    token = f"e2e-{secrets.token_hex(12)}"
    log = tmp_path_factory.mktemp("ui-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "trellis_actors",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--app",
        "ui_tasks:app",
        "--store",
        f"sqlite:///{log.parent / 'trellis.db'}",
        "--workers",
        "4",
        "--token",
        token,
    ]
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}  # for --app ui_tasks:app
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
    try:
        yield Server(_read_url(process, log), token, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    expect.set_options(timeout=TIMEOUT)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def logged_in(browser: Any, server: Server) -> dict[str, Any]:
    """Cookies of a browser that logged in once through the form."""
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.goto("/ui/login")
    page.get_by_label("Token").fill(server.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/")
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


#: Fragments answer a form with errors 422 (and a refused action 409) on purpose; the
#: browser logs each as a failed load. Everything else in the console counts as an error.
EXPECTED = ("status of 409", "status of 422")


@pytest.fixture
def js_errors() -> list[str]:
    """JavaScript errors and console errors seen by :func:`page`; none are expected."""
    return []


def _console(errors: list[str]) -> Any:
    def seen(message: Any) -> None:
        if message.type == "error" and not any(e in message.text for e in EXPECTED):
            errors.append(message.text)

    return seen


@pytest.fixture
def page(browser: Any, server: Server, logged_in: dict[str, Any], js_errors: list[str]) -> Any:
    """A logged-in tab; the test fails if any page in it has a JavaScript error."""
    context = browser.new_context(
        base_url=server.url, storage_state=logged_in, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT)
    tab = context.new_page()
    tab.on("pageerror", lambda error: js_errors.append(f"page error: {error}"))
    tab.on("console", _console(js_errors))
    yield tab
    context.close()
    assert not js_errors, f"JavaScript errors: {js_errors}"
