"""How a runtime runs: one frozen value, checked when it is made."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ConfigurationError
from .janitor import Retention
from .logs import LOG_TASKS, LogTasks


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """How a runtime runs. Times are in seconds."""

    workers: int = 8
    grace_period: float = 10.0
    lease: float = 30.0
    # Fast tasks (measured under 5 ms) a node may claim ahead for each idle worker, within
    # about 10 ms of measured work; slow and unmeasured tasks are claimed one per idle
    # worker, so a node never holds work it cannot start now.
    claim_ahead: int = 32
    prefetch: int = 16  # most fast tasks a worker takes at once (about 10 ms of work)
    poll_interval: float = 1.0
    queues: tuple[str, ...] | None = None  # None: work every queue
    node: str | None = None  # lease owner; default host:pid:random
    janitor_interval: float = 5.0
    retention: Retention = field(default_factory=Retention)
    worker_idle_timeout: float | None = None
    # One line per finished attempt: "all" (completions at info, as `trellis serve` and
    # `trellis worker` do by default), "failures" (retries, failures and dead letters
    # only: the default when embedded, where a line per task would flood the host
    # program's logs and cost a third of a no-op task's time) or "none".
    log_tasks: LogTasks = "failures"
    log_transitions: bool = False  # one debug line per other transition (queued, running, …)
    # Most `def` handlers running at once, in worker threads (None: as many as workers).
    threads: int | None = None
    # Pool processes for executor="process" handlers (default: one per core).
    processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Warn when the event loop is blocked this long (an async handler doing blocking
    # work); None turns the watch off.
    blocked_loop_warning: float | None = 0.1

    def __post_init__(self) -> None:
        if self.prefetch < 1 or self.claim_ahead < 1:
            raise ConfigurationError("prefetch and claim_ahead must be >= 1")
        if self.workers < 0:
            raise ConfigurationError("workers must be >= 0")
        if self.grace_period < 0:
            raise ConfigurationError("grace_period must be >= 0 seconds")
        for name in ("lease", "poll_interval", "janitor_interval"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be > 0 seconds")
        if self.worker_idle_timeout is not None and self.worker_idle_timeout <= 0:
            raise ConfigurationError("worker_idle_timeout must be > 0 seconds (or None: off)")
        if self.threads is not None and self.threads < 1:
            raise ConfigurationError("threads must be >= 1 (or None: as many as workers)")
        if self.processes < 1:
            raise ConfigurationError("processes must be >= 1")
        if self.log_tasks not in LOG_TASKS:
            raise ConfigurationError(
                f"log_tasks must be one of {', '.join(LOG_TASKS)}, not {self.log_tasks!r}"
            )
        if self.blocked_loop_warning is not None and self.blocked_loop_warning <= 0:
            raise ConfigurationError("blocked_loop_warning must be > 0 seconds (or None: off)")

    @property
    def thread_count(self) -> int:
        """How many `def` handlers may run at once."""
        return self.threads if self.threads is not None else max(1, self.workers)
