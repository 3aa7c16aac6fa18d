"""Per-type charts from stored data: tasks completed and dead per time bucket over the last
hour or day, with the median and 95th percentile of their last attempt's duration.

Pure functions of :meth:`Runtime.finished_since` rows, so any node draws the same charts
(the overview's throughput chart counts only what this node saw since it started).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..stores.base import Finished
from ._throughput import Bucket, Chart, chart

#: name: (label, seconds covered, bucket seconds)
SPANS = {
    "hour": ("last hour, per minute", 3600.0, 60.0),
    "day": ("last day, per 30 minutes", 86400.0, 1800.0),
}
#: Rows read at most for one drawing; beyond it the oldest buckets are undercounted.
ROW_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class TypeChart:
    type: str
    chart: Chart
    p50: float | None
    p95: float | None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def type_charts(
    rows: Iterable[Finished], now: float, span: float, bucket: float, width: int = 300
) -> list[TypeChart]:
    """One chart per task type seen in ``rows`` over the ``span`` seconds before ``now``,
    in buckets of ``bucket`` seconds (oldest first), types by name."""
    first = math.floor((now - span) / bucket) + 1
    size = math.floor(now / bucket) - first + 1
    counts: dict[str, list[list[int]]] = {}
    durations: dict[str, list[float]] = {}
    for row in rows:
        slot = math.floor(row.finished_at / bucket) - first
        if not 0 <= slot < size:
            continue
        per_type = counts.setdefault(row.type, [[0, 0] for _ in range(size)])
        per_type[slot][0 if row.ok else 1] += 1
        if (took := row.duration) is not None and took >= 0:
            durations.setdefault(row.type, []).append(took)
    charts = []
    for name in sorted(counts):
        series = [
            Bucket((first + index) * bucket, completed, failed)
            for index, (completed, failed) in enumerate(counts[name])
        ]
        spent = durations.get(name, [])
        charts.append(
            TypeChart(
                name, chart(series, width, 40), percentile(spent, 0.5), percentile(spent, 0.95)
            )
        )
    return charts
