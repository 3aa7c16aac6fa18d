"""What runs inside a pool process: the job wrapper and the context a handler gets.

The pool (``processes.py``) sends :func:`run_job` with a reference to the handler; the
payload arrives as JSON text and the result leaves as JSON text. Progress and log lines go
back over a loopback socket that the pool listens on: one connection per process, opened on
the first report, authenticated by a token, one JSON line per report: ``[job, fraction,
message]`` for progress, ``{"job": job, "log": event}`` for a log event, which the pool
logs with the node's own structlog configuration.
"""

from __future__ import annotations

import inspect
import json
import pickle
import socket
from collections.abc import Callable
from typing import Any

import structlog

from ..contracts import cached_contract
from ..errors import ValidationError

#: ``run_job`` returns one of these kinds with its text.
RESULT = "result"
NOT_SERIALIZABLE = "not-serializable"

# The connection back to the pool, made on the first progress report of this process.
_link: tuple[tuple[str, int], socket.socket] | None = None


class ProcessContext:
    """The running attempt of one task, as a handler in a pool process sees it."""

    __slots__ = ("_address", "_job", "_log", "_token", "attempt", "sent", "task_id", "type")

    def __init__(
        self,
        *,
        job: str,
        task_id: str,
        type: str,
        attempt: int,
        address: tuple[str, int],
        token: str,
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        #: Lines sent so far (the pool waits for as many before it replies).
        self.sent = 0
        self._job = job
        self._address = address
        self._token = token
        self._log: structlog.typing.FilteringBoundLogger | None = None

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound to ``task_id``, ``task_type`` and ``attempt``; its
        events are logged by the pool, so they follow the node's configuration."""
        if self._log is None:
            logger = structlog.wrap_logger(
                _Forward(self),
                processors=[
                    structlog.processors.add_log_level,
                    structlog.processors.format_exc_info,
                    self._encode,
                ],
                wrapper_class=structlog.make_filtering_bound_logger(0),
            )
            self._log = logger.bind(task_id=self.task_id, task_type=self.type, attempt=self.attempt)
        return self._log

    def _encode(self, logger: object, method: str, event: structlog.typing.EventDict) -> str:
        return json.dumps({"job": self._job, "log": event}, default=repr)

    def _send(self, line: str) -> None:
        _connection(self._address, self._token).sendall(f"{line}\n".encode())
        self.sent += 1

    def cancelled(self) -> bool:
        """Always ``False``: a cancelled or timed-out job's process is killed instead."""
        return False

    def alive(self) -> None:
        """Nothing to do: the pool process is watched by the pool, not by a watchdog."""

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the task has got (0..1), with an optional message."""
        if not 0.0 <= fraction <= 1.0:
            raise ValidationError(f"progress must be between 0 and 1, got {fraction}")
        self._send(json.dumps([self._job, fraction, message]))


class _Forward:
    """The logger at the end of ``ctx.log``'s processors: it sends each line to the pool."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: ProcessContext) -> None:
        self._ctx = ctx

    def msg(self, line: str) -> None:
        self._ctx._send(line)

    debug = info = warning = warn = error = critical = fatal = exception = log = msg


def _connection(address: tuple[str, int], token: str) -> socket.socket:
    global _link
    if _link is not None and _link[0] == address:
        return _link[1]
    if _link is not None:
        _link[1].close()
    sock = socket.create_connection(address)
    sock.sendall(f"{token}\n".encode())
    _link = (address, sock)
    return sock


def run_job(
    handler: Callable[[Any, Any], Any],
    job: str,
    task_id: str,
    type: str,
    attempt: int,
    payload: str,
    address: tuple[str, int],
    token: str,
) -> tuple[str, str | None, int]:
    """Run ``handler(ctx, json.loads(payload))``: ``(kind, text, progress reports sent)``.

    What the handler raises goes back to the pool as it is, or, when it cannot be pickled,
    as a ``RuntimeError`` naming its type and message.
    """
    ctx = ProcessContext(
        job=job, task_id=task_id, type=type, attempt=attempt, address=address, token=token
    )
    contract = cached_contract(inspect.unwrap(handler))
    try:
        result = handler(ctx, contract.parse(json.loads(payload)))
        result = contract.give(result)
    except BaseException as exc:
        stand_in = _stand_in(exc)
        if stand_in is None:
            raise
        raise stand_in from None
    if result is None:
        return RESULT, None, ctx.sent
    try:
        return RESULT, json.dumps(result, allow_nan=False), ctx.sent
    except (TypeError, ValueError) as exc:
        return NOT_SERIALIZABLE, f"{type} returned a value that is not JSON: {exc}", ctx.sent


def _stand_in(exc: BaseException) -> BaseException | None:
    """A picklable ``RuntimeError`` for ``exc``, or ``None`` if ``exc`` itself pickles."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        stand_in = RuntimeError(f"{type(exc).__qualname__}: {exc}")
        stand_in.__traceback__ = exc.__traceback__
        return stand_in
    return None
