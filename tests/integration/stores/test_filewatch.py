"""``FileWatch``: the SQLite store's hint that the WAL was written (Linux inotify)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trellis_actors.stores._filewatch import FileWatch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")


def test_a_write_is_told_once(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db-wal"
    path.write_bytes(b"")
    watch = FileWatch.open(str(path))
    assert watch is not None
    try:
        assert not watch.wait(0)  # nothing written yet
        with path.open("ab") as f:
            f.write(b"frame")
            f.flush()
            f.write(b"frame")
            f.flush()
        assert watch.wait(0)  # both writes, told together
        assert not watch.wait(0)
    finally:
        watch.close()


def test_a_paused_watch_tells_of_no_write(tmp_path: Path) -> None:
    """Writes made while paused (the store's own commits) are never told, and writes
    after it resumes are."""
    path = tmp_path / "tasks.db-wal"
    path.write_bytes(b"")
    watch = FileWatch.open(str(path))
    assert watch is not None
    try:
        watch.pause()
        with path.open("ab") as f:
            f.write(b"frame")
            f.flush()
            watch.resume()
            assert not watch.wait(0)
            f.write(b"frame")
            f.flush()
        assert watch.wait(0)
    finally:
        watch.close()
    watch.pause()  # closed: nothing to pause, and no error
    watch.resume()


def test_a_burst_of_writes_is_taken_in_one_look(tmp_path: Path) -> None:
    """``after`` does not wake for each write (a commit writes a page at a time): it
    sleeps, then takes every write told meanwhile at once."""
    path = tmp_path / "tasks.db-wal"
    path.write_bytes(b"")
    watch = FileWatch.open(str(path))
    assert watch is not None
    try:
        assert not watch.after(0)  # nothing written
        with path.open("ab") as f:
            for _ in range(20):
                f.write(b"frame")
                f.flush()
        assert watch.after(0.0001)  # all twenty
        assert not watch.wait(0)
    finally:
        watch.close()


def test_no_file_no_watch(tmp_path: Path) -> None:
    """A missing file gives no watch: the caller polls."""
    assert FileWatch.open(str(tmp_path / "missing-wal")) is None
