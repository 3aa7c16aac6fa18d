"""The node actor: this node's row in the nodes registry, and its readiness checks.

Every ``heartbeat`` seconds (a kernel timer's :class:`Beat`) it writes the node's row —
host, pid, version, workers and what each holds, queues, draining — through the store
actor, and the store deletes rows of nodes long gone. It deletes its own row when it stops.
Beside its mailbox it runs the App's readiness checks every ``interval`` seconds, each
within its timeout, and answers :class:`Readiness` from the last round at once.
"""

from __future__ import annotations

import inspect
import os
import socket
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata
from typing import assert_never

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref, WhichChildren
from ..actors._supervisor import SupervisorMsg
from ..app import ReadinessCheck
from ..errors import TrellisError
from ..stores.nodes import NodeInfo, WorkerActivity
from .messages import QueueInfo, QueueMsg, StoreMsg
from .node_messages import (
    Beat,
    Checked,
    CheckResult,
    Draining,
    ForgetNode,
    NodeBeat,
    NodeMsg,
    Readiness,
)

log = structlog.get_logger("trellis.node")

#: Longest a stopping node waits for the store to delete its row.
FORGET_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What the node actor needs to know of its node."""

    node: str
    heartbeat: float | None  # None: no registry row
    queues: tuple[str, ...] | None
    processes: int  # pool processes (0: no process handlers)
    checks: tuple[ReadinessCheck, ...] = ()
    check_interval: float = 5.0


class NodeActor(Actor[NodeMsg]):
    kind = "node"

    def __init__(
        self,
        store: Ref[StoreMsg],
        queue: Ref[QueueMsg],
        workers: Ref[SupervisorMsg],
        clock: Clock,
        config: NodeConfig,
    ) -> None:
        super().__init__()
        self._store = store
        self._queue = queue
        self._workers = workers
        self._clock = clock
        self._config = config
        self._started_at = clock.now()
        self._version = _version()
        self._draining = False
        self._checks = tuple(CheckResult(c.name, False, "pending") for c in config.checks)
        if config.heartbeat is not None:
            self.timer(Beat, every=config.heartbeat)

    async def on_start(self) -> None:
        await self._beat()

    async def on_stop(self) -> None:
        if self._config.heartbeat is None:
            return
        # If the store is down, the row ages out instead.
        with trio.move_on_after(FORGET_TIMEOUT), suppress(TrellisError):
            await self._store.ask(ForgetNode(self._config.node), timeout=None)

    async def handle(self, msg: NodeMsg) -> None:
        match msg:
            case Beat():
                await self._beat()
            case Draining():
                if not self._draining:
                    self._draining = True
                    await self._beat()
            case Checked(results):
                self._report(results)
                self._checks = results
            case Readiness():
                msg.reply.send(self._checks)
            case _:
                assert_never(msg)

    async def background(self, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        if not self._config.checks:
            return
        while True:
            results = await run_checks(self._config.checks)
            self.ref.tell_nowait(Checked(results))
            await trio.sleep(self._config.check_interval)

    def _report(self, results: tuple[CheckResult, ...]) -> None:
        """Log each check that starts failing, or passes again."""
        before = {r.name: r.ok for r in self._checks if r.error != "pending"}
        for result in results:
            if result.ok and before.get(result.name) is False:
                log.info("readiness check passes again", check=result.name)
            elif not result.ok and before.get(result.name, True):
                log.warning("readiness check fails", check=result.name, error=result.error)

    async def _beat(self) -> None:
        config = self._config
        if config.heartbeat is None:
            return
        try:
            infos = await self._queue.ask(QueueInfo())
            names: tuple[str, ...] = await self._workers.ask(WhichChildren())
            now = self._clock.now()
            activity = {info.name: info for info in infos}
            workers = tuple(
                WorkerActivity(name, info.current_task, info.current_type, info.tasks_done)
                if (info := activity.get(name)) is not None
                else WorkerActivity(name, None, None, 0)
                for name in names
            )
            node = NodeInfo(
                id=config.node,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=self._version,
                started_at=self._started_at,
                seen_at=now,
                heartbeat=config.heartbeat,
                workers=len(names),
                busy=sum(1 for w in workers if w.current_task is not None),
                processes=config.processes,
                queues=config.queues,
                draining=self._draining,
                activity=workers,
            )
            await self._store.ask(NodeBeat(node, now))
        except TrellisError as exc:  # the store is down (or restarting): the next beat
            log.debug("heartbeat not written", error=str(exc))


def _version() -> str:
    """The installed package's version (the package itself is above the runtime)."""
    try:
        return metadata.version("trellis-actors")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


async def run_checks(checks: tuple[ReadinessCheck, ...]) -> tuple[CheckResult, ...]:
    """Run every check at once, each within its timeout."""
    results: dict[str, CheckResult] = {}

    async def one(check: ReadinessCheck) -> None:
        results[check.name] = CheckResult(check.name, False, "timed out")
        with trio.move_on_after(check.timeout):
            results[check.name] = await _run(check)

    async with trio.open_nursery() as nursery:
        for check in checks:
            nursery.start_soon(one, check)
    return tuple(results[check.name] for check in checks)


async def _run(check: ReadinessCheck) -> CheckResult:
    try:
        if inspect.iscoroutinefunction(check.fn):
            answer = await check.fn()
        else:
            answer = await trio.to_thread.run_sync(check.fn, abandon_on_cancel=True)
            if inspect.isawaitable(answer):
                answer = await answer
    except Exception as exc:
        return CheckResult(check.name, False, f"{type(exc).__name__}: {exc}")
    if answer is False:
        return CheckResult(check.name, False, "failed")
    return CheckResult(check.name, True)
