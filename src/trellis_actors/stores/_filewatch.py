"""Waiting for a file to be written to, without polling it: Linux inotify, through libc.

:class:`FileWatch` is a wake-up hint, never the only source of truth: a caller still looks
at what it cares about at its own pace, and the watch only cuts the wait short. Elsewhere
than Linux (or when inotify cannot be set up: no such file, too many watches)
:meth:`FileWatch.open` returns ``None`` and the caller polls as before.
"""

from __future__ import annotations

import ctypes
import os
import select
import sys
import threading
import time
from collections.abc import Callable

#: inotify's event mask bits (``<sys/inotify.h>``): "the file was written to", and one
#: that a paused watch waits for instead, which a write never sets off ("the file itself
#: was deleted").
_IN_MODIFY = 0x00000002
_IN_DELETE_SELF = 0x00000400


class FileWatch:
    """An inotify descriptor watching one file for writes."""

    def __init__(self, fd: int, watch: Callable[[int], object]) -> None:
        self._fd = fd
        self._watch = watch  # sets the watch's mask (inotify_add_watch on the same file)
        self._lock = threading.Lock()  # pause() and resume() race close() from another thread
        self._closed = False
        self._poll = select.epoll()
        self._poll.register(fd, select.EPOLLIN)

    @classmethod
    def open(cls, path: str) -> FileWatch | None:
        """A watch on writes to ``path``; ``None`` where inotify is not to be had."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except (OSError, AttributeError):
            return None
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        name = os.fsencode(path)
        try:
            if add(fd, name, _IN_MODIFY) < 0:
                os.close(fd)
                return None
            return cls(fd, lambda mask: add(fd, name, mask))
        except BaseException:
            os.close(fd)
            raise

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds (without the GIL) for a write to the file; True
        if there was one since the last call. Events that came meanwhile are all taken."""
        if not self._poll.poll(timeout):
            return False
        self.drain()
        return True

    def after(self, seconds: float) -> bool:
        """Sleep ``seconds`` (without the GIL), woken by no write, then take the events
        told meanwhile: True if there were any. A burst of writes (a commit's pages) then
        costs one wake-up, not one each."""
        time.sleep(seconds)
        return self.drain()

    def drain(self) -> bool:
        """Take the events told so far, without waiting: True if there were any."""
        told = False
        try:
            while os.read(self._fd, 4096):
                told = True
        except BlockingIOError:
            pass
        return told

    def pause(self) -> None:
        """Stop telling of writes (until :meth:`resume`): writes the watcher knows of
        itself, such as its own process's, need not wake it. Changing the watch's mask
        tells nothing, and writes in between are never told."""
        self._set(_IN_DELETE_SELF)

    def resume(self) -> None:
        """Tell of writes again."""
        self._set(_IN_MODIFY)

    def _set(self, mask: int) -> None:
        with self._lock:
            if not self._closed:
                self._watch(mask)  # fails only if the file is gone: then nothing is told

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._poll.close()
            os.close(self._fd)
