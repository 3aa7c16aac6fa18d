"""The task types the recovery tests run, in child processes and in the test process.

Every handler appends ``start <pid> <task_id>`` when it begins and ``end <pid> <task_id>``
when it is done to the log file named by :func:`open_log`. Each line is one ``write`` on a
descriptor opened with ``O_APPEND``: short appends are atomic, so lines from several
processes never interleave, and a line that was written survives the process being killed.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from trellis_actors import App, TaskContext

_log_fd: int | None = None


def open_log(path: str) -> None:
    """Send this process's lines to ``path`` (created if missing, appended to)."""
    global _log_fd
    _log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def close_log() -> None:
    """Stop appending (a test process that opened a log for one test)."""
    global _log_fd
    if _log_fd is not None:
        os.close(_log_fd)
        _log_fd = None


def note(word: str, what: str) -> None:
    """Append ``<word> <pid> <what>``; without a log (the submitting test process), nothing."""
    if _log_fd is not None:
        os.write(_log_fd, f"{word} {os.getpid()} {what}\n".encode())


app = App(builtins=False)


@app.task(name="nap")
async def nap(ctx: TaskContext, payload: Any) -> dict[str, float]:
    """Sleep ``payload["seconds"]``: a task that is likely to be running at a crash."""
    note("start", ctx.task_id)
    await trio.sleep(payload["seconds"])
    note("end", ctx.task_id)
    return {"slept": payload["seconds"]}


@app.task(name="echo")
async def echo(ctx: TaskContext, payload: Any) -> Any:
    """Return the payload: a task that is over at once."""
    note("start", ctx.task_id)
    note("end", ctx.task_id)
    return payload
