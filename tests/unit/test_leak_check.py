"""The leftover check of ``tests/conftest.py`` also finds threads a test leaves running."""

from __future__ import annotations

import threading

from tests.conftest import leftover_threads, thread_names


def test_finds_trellis_and_non_daemon_threads() -> None:
    """A new ``trellis…`` thread or a new non-daemon thread is a leftover; a daemon is
    not, nor is a thread that was there before (a fixture's)."""
    before = thread_names()
    stop = threading.Event()
    named = threading.Thread(target=stop.wait, name="trellis-handler x", daemon=True)
    plain = threading.Thread(target=stop.wait, name="plain", daemon=False)
    daemon = threading.Thread(target=stop.wait, name="helper", daemon=True)
    for thread in (named, plain, daemon):
        thread.start()
    try:
        left = leftover_threads(before)
        assert {t.name for t in left} == {"trellis-handler x", "plain"}
    finally:
        stop.set()
        for thread in (named, plain, daemon):
            thread.join()
    assert leftover_threads(before) == []
