"""Throughput for the overview: completed and failed tasks per 10 s, for the last minutes.

A :class:`Throughput` subscribes to the runtime's lifecycle stream and keeps a ring of
counts; :func:`chart` turns the counts into the bars of a small SVG chart (pure, so the
geometry is testable without a browser).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from ..lifecycle import TaskStatus, Transition
from ..runtime.runtime import Runtime

#: Seconds per bucket, and how many buckets are kept (five minutes).
BUCKET = 10.0
BUCKETS = 30


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float  # seconds since the epoch
    completed: int
    failed: int


class Throughput:
    """A ring of (completed, failed) counts per bucket, fed by :meth:`run`."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        bucket: float = BUCKET,
        size: int = BUCKETS,
    ) -> None:
        self._clock = clock
        self._bucket = bucket
        self._size = size
        self._counts: dict[int, list[int]] = {}
        self._scope = trio.CancelScope()

    def record(self, moves: Iterable[Transition], now: float) -> None:
        """Count the tasks that completed or failed in ``moves`` into ``now``'s bucket."""
        slot = math.floor(now / self._bucket)
        for move in moves:
            to = move.event.to_status
            if to is TaskStatus.COMPLETED or to is TaskStatus.FAILED:
                counts = self._counts.setdefault(slot, [0, 0])
                counts[0 if to is TaskStatus.COMPLETED else 1] += 1
        for old in [s for s in self._counts if s <= slot - self._size]:
            del self._counts[old]

    def series(self, now: float | None = None) -> list[Bucket]:
        """The last ``size`` buckets, oldest first, the current (partial) one last."""
        slot = math.floor((self._clock() if now is None else now) / self._bucket)
        buckets = []
        for index in range(slot - self._size + 1, slot + 1):
            completed, failed = self._counts.get(index, (0, 0))
            buckets.append(Bucket(index * self._bucket, completed, failed))
        return buckets

    async def run(
        self, runtime: Runtime, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Count transitions until :meth:`stop` (or cancellation); started once subscribed."""
        with self._scope, runtime.observe(self._observe):
            task_status.started()
            await trio.sleep_forever()

    def _observe(self, batch: Iterable[Transition]) -> None:
        self.record(batch, self._clock())

    def stop(self) -> None:
        self._scope.cancel()


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    completed_y: float
    completed_height: float
    failed_y: float
    failed_height: float
    bucket: Bucket


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    peak: int
    completed: int
    failed: int
    bars: tuple[Bar, ...]


def chart(series: list[Bucket], width: int = 600, height: int = 120) -> Chart:
    """Stacked bars (completed below, failed on top) scaled so the busiest bucket fills
    ``height``; an empty series draws nothing but the baseline."""
    peak = max((b.completed + b.failed for b in series), default=0)
    step = width / max(len(series), 1)
    scale = height / peak if peak else 0.0
    bars = []
    for index, bucket in enumerate(series):
        done_h = bucket.completed * scale
        fail_h = bucket.failed * scale
        bars.append(
            Bar(
                x=round(index * step + 1, 2),
                width=round(max(step - 2, 1), 2),
                completed_y=round(height - done_h, 2),
                completed_height=round(done_h, 2),
                failed_y=round(height - done_h - fail_h, 2),
                failed_height=round(fail_h, 2),
                bucket=bucket,
            )
        )
    return Chart(
        width=width,
        height=height,
        peak=peak,
        completed=sum(b.completed for b in series),
        failed=sum(b.failed for b in series),
        bars=tuple(bars),
    )
