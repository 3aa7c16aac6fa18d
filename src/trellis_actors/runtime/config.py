"""How a runtime runs: one frozen value, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigurationError
from .janitor import Retention


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
    log_transitions: bool = False  # one debug line per transition, besides failures

    def __post_init__(self) -> None:
        if self.prefetch < 1 or self.claim_ahead < 1:
            raise ConfigurationError("prefetch and claim_ahead must be >= 1")
        if self.workers < 0:
            raise ConfigurationError("workers must be >= 0")
        if self.grace_period < 0 or self.lease <= 0 or self.poll_interval <= 0:
            raise ConfigurationError("grace_period must be >= 0; lease and poll_interval > 0")
