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

#: inotify's event mask bit for "the file was written to" (``<sys/inotify.h>``).
_IN_MODIFY = 0x00000002


class FileWatch:
    """An inotify descriptor watching one file for writes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
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
        try:
            if add(fd, os.fsencode(path), _IN_MODIFY) < 0:
                os.close(fd)
                return None
            return cls(fd)
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

    def drain(self) -> None:
        """Take the events told so far, without waiting."""
        try:
            while os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._poll.close()
        os.close(self._fd)
