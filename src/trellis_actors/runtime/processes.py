"""The process pool actor: CPU-bound handlers in supervised worker processes.

The pool owns a trio-parallel worker context for as long as it runs. Each
:class:`RunInProcess` is a task of its own in the pool's nursery, with its own cancel scope,
at most ``size`` at once. A job that raises, crashes its process or returns something that
is not JSON is that job's outcome, never the pool's crash.

Worker type and lifetime, chosen on purpose:

* ``spawn`` workers: a fresh interpreter per process, safe in a parent that runs threads
  (the SQLite writer, ``to_thread`` handlers), where ``fork`` is not, and with no
  long-lived helper process of its own, unlike ``forkserver``.
* ``idle_timeout=inf`` and no ``retire``: a spawn costs an interpreter start plus the
  imports of the handler's module, so processes are started when the pool starts and kept
  for the pool's life; only a crash or a kill replaces one. At most ``size`` exist.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

import structlog
import trio
import trio_parallel

from ..actors import Actor, Request
from ..errors import ActorStopped, ConfigurationError
from ..lifecycle import TaskError
from . import _process_child as child

log = structlog.get_logger("trellis.processes")
task_log = structlog.get_logger("trellis.worker")  # where async handlers' ctx.log goes
_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})

#: How long a finished job waits for the progress reports its process sent before it.
PROGRESS_CATCH_UP = 1.0
#: How long idle processes get to exit when the pool stops, before they are killed.
GRACE_PERIOD = 2.0


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a job ended: a result, what the handler raised, or why there is neither."""

    result: str | None  # the handler's result as JSON text (None if it returned None)
    exception: BaseException | None  # what the handler raised, pickled back from the child
    error: TaskError | None  # WorkerCrashed or ResultNotSerializable


@dataclass(frozen=True, slots=True)
class RunInProcess(Request[ProcessOutcome]):
    """Run ``handler(ctx, json.loads(payload))`` in a pool process."""

    job: str  # f"{task_id}:{attempt}"
    handler: Callable[[Any, Any], Any]  # a module-level def (ctx, payload) -> result
    payload: str  # JSON text
    task_id: str
    type: str
    attempt: int
    progress: Callable[[float, str | None], None]  # called in the pool's event loop


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Kill the process running ``job``, if any; the asker has stopped waiting."""

    job: str


PoolMsg = RunInProcess | CancelRun


class _Job:
    """A running job: its cancel scope and the progress reports received for it."""

    __slots__ = ("caught_up", "expected", "msg", "received", "scope")

    def __init__(self, msg: RunInProcess) -> None:
        self.msg = msg
        self.scope = trio.CancelScope()
        self.received = 0
        self.expected = math.inf
        self.caught_up = trio.Event()

    def reported(self) -> None:
        self.received += 1
        if self.received >= self.expected:
            self.caught_up.set()

    async def catch_up(self, sent: int) -> None:
        """Wait (briefly) for the reports sent before the job ended to arrive."""
        self.expected = sent
        if self.received < sent:
            with trio.move_on_after(PROGRESS_CATCH_UP):
                await self.caught_up.wait()


class _Busy:
    """The pool's limiter as one job holds it, counted in the pool's ``busy``."""

    __slots__ = ("_pool",)

    def __init__(self, pool: ProcessPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> None:
        await self._pool._limiter.acquire()
        self._pool.busy += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._pool.busy -= 1
        self._pool._limiter.release()


class ProcessPool(Actor[PoolMsg]):
    """``size`` worker processes running :class:`RunInProcess` jobs."""

    kind = "processes"

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ConfigurationError(f"a process pool needs at least 1 process, got {size}")
        self.size = size
        #: Processes replaced after a crash.
        self.restarts = 0
        #: Jobs cancelled (their processes killed, if they had started).
        self.cancelled = 0
        #: Jobs holding a process (warm-ups are not counted).
        self.busy = 0
        self._limiter = trio.CapacityLimiter(size)
        self._jobs: dict[str, _Job] = {}
        self._token = secrets.token_hex(16)
        self._address: tuple[str, int] | None = None
        self._context: trio_parallel.WorkerContext | None = None
        self._nursery: trio.Nursery | None = None

    def details(self) -> dict[str, Any]:
        return {
            "processes": self.size,
            "busy": self.busy,
            "waiting": self._limiter.statistics().tasks_waiting,
            "restarts": self.restarts,
            "cancelled": self.cancelled,
        }

    async def handle(self, msg: PoolMsg) -> None:
        match msg:
            case RunInProcess():
                assert self._nursery is not None  # background() runs before any message
                if msg.job in self._jobs:
                    msg.reply.fail(ConfigurationError(f"job {msg.job!r} is already running"))
                else:
                    self._jobs[msg.job] = job = _Job(msg)
                    self._nursery.start_soon(self._run, job)
            case CancelRun(job=name):
                if (running := self._jobs.get(name)) is not None:
                    running.scope.cancel()
            case _:
                assert_never(msg)

    async def on_stop(self) -> None:
        for msg in self.leftovers():
            if isinstance(msg, RunInProcess):
                msg.reply.fail(ActorStopped(f"{self.name} stopped before running {msg.job}"))

    async def background(self, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with trio_parallel.open_worker_context(
                idle_timeout=math.inf,
                grace_period=GRACE_PERIOD,
                worker_type=trio_parallel.WorkerType.SPAWN,
            ) as context:
                self._context = context
                # Jobs run in this inner nursery, so all are killed before the context closes.
                async with trio.open_nursery() as nursery:
                    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
                    self._address = listeners[0].socket.getsockname()[:2]
                    nursery.start_soon(trio.serve_listeners, self._reports, listeners)
                    self._nursery = nursery
                    task_status.started()
                    for _ in range(self.size):
                        nursery.start_soon(self._warm)
                    await trio.sleep_forever()
        except trio_parallel.BrokenWorkerError as exc:
            log.warning("a pool process did not exit cleanly", actor=self.name, error=repr(exc))
        finally:
            self._nursery = None

    # -- jobs -----------------------------------------------------------------------------
    async def _run(self, job: _Job) -> None:
        msg = job.msg
        try:
            with job.scope:
                msg.reply.send(await self._outcome(job))
            if job.scope.cancelled_caught:
                self.cancelled += 1  # its process was killed; the asker wants no answer
        finally:
            del self._jobs[msg.job]
            if not msg.reply.is_set and not job.scope.cancelled_caught:  # the pool stops
                msg.reply.fail(ActorStopped(f"{self.name} stopped while running {msg.job}"))

    async def _outcome(self, job: _Job) -> ProcessOutcome:
        msg = job.msg
        assert self._context is not None and self._address is not None
        try:
            kind, text, sent = await self._context.run_sync(
                child.run_job,
                msg.handler,
                msg.job,
                msg.task_id,
                msg.type,
                msg.attempt,
                msg.payload,
                self._address,
                self._token,
                kill_on_cancel=True,
                limiter=_Busy(self),
            )
        except trio_parallel.BrokenWorkerError as exc:
            return self._crashed(msg, exc)
        except trio.Cancelled:
            raise
        except BaseException as exc:  # what the handler raised, from the child
            return ProcessOutcome(None, exc, None)
        await job.catch_up(sent)
        if kind == child.NOT_SERIALIZABLE:
            return ProcessOutcome(None, None, TaskError("ResultNotSerializable", str(text)))
        return ProcessOutcome(text, None, None)

    def _crashed(self, msg: RunInProcess, exc: trio_parallel.BrokenWorkerError) -> ProcessOutcome:
        self.restarts += 1
        how = _exit_description(exc)
        log.warning("a pool process died", actor=self.name, task_id=msg.task_id, exit=how)
        if self._nursery is not None:
            self._nursery.start_soon(self._warm)  # a replacement, ready for the next job
        message = f"the process running {msg.type} died ({how}); the pool replaced it"
        return ProcessOutcome(None, None, TaskError("WorkerCrashed", message))

    async def _warm(self) -> None:
        """Start a process (by running nothing in it), so the first job need not wait."""
        assert self._context is not None
        try:
            await self._context.run_sync(int, kill_on_cancel=True, limiter=self._limiter)
        except trio_parallel.BrokenWorkerError as exc:
            log.warning(
                "a pool process failed to start",
                actor=self.name,
                error=repr(exc),
                hint="its own error is on stderr; a main module that starts a runtime when it "
                'is run needs `if __name__ == "__main__":` (spawned processes run it again)',
            )

    # -- progress -------------------------------------------------------------------------
    async def _reports(self, stream: trio.SocketStream) -> None:
        """One pool process's reports: a token line, then one JSON line per progress
        report or log event (see ``_process_child``)."""
        async with stream:
            buffer, trusted = b"", False
            while chunk := await stream.receive_some(65536):
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if trusted:
                        self._report(line)
                    elif line.decode(errors="replace") == self._token:
                        trusted = True
                    else:
                        return  # not one of ours

    def _report(self, line: bytes) -> None:
        try:
            report = json.loads(line)
            name = report["job"] if isinstance(report, dict) else report[0]
        except (ValueError, LookupError, TypeError):
            return
        job = self._jobs.get(name)
        if job is None:
            return  # a late report for a job that has ended
        try:
            if isinstance(report, dict):
                _log_event(report["log"])
            else:
                _, fraction, message = report
                job.msg.progress(float(fraction), message)
        except Exception:
            log.exception("a report from a pool process failed", job=name)
        job.reported()


def _log_event(event: dict[str, Any]) -> None:
    """Log an event that ``ctx.log`` sent from a pool process, as the node logs."""
    level = str(event.pop("level", "info"))
    method = getattr(task_log, level if level in _LEVELS else "info")
    method(str(event.pop("event", "")), **event)


def _exit_description(exc: trio_parallel.BrokenWorkerError) -> str:
    code = getattr(exc.args[-1], "exitcode", None) if exc.args else None
    if code is None:
        return "no exit code"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"
