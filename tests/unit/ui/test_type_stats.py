"""Per-type charts from stored rows: buckets, outcomes and duration percentiles."""

from __future__ import annotations

from trellis_actors.stores.base import Finished
from trellis_actors.ui._type_stats import percentile, type_charts


class TestPercentile:
    def test_nearest_rank(self) -> None:
        values = [float(n) for n in range(1, 101)]
        assert percentile(values, 0.5) == 50
        assert percentile(values, 0.95) == 95
        assert percentile([3.0], 0.95) == 3
        assert percentile([], 0.5) is None


class TestTypeCharts:
    def test_buckets_outcomes_and_durations_per_type(self) -> None:
        """Rows fall in their bucket; rows before the span are left out; types by name."""
        now = 3600.0 * 10 + 30  # 30 s into a minute
        rows = [
            Finished("mail", True, now - 5, now - 6),  # the current minute
            Finished("mail", False, now - 65, now - 75),  # the minute before
            Finished("mail", True, now - 4000, now - 4001),  # before the hour: left out
            Finished("a-report", True, now - 10, None),  # no start: no duration
        ]
        charts = type_charts(rows, now, 3600, 60)
        assert [c.type for c in charts] == ["a-report", "mail"]
        mail = charts[1]
        assert (mail.chart.completed, mail.chart.failed) == (1, 1)
        assert len(mail.chart.bars) == 60
        last, before = mail.chart.bars[-1].bucket, mail.chart.bars[-2].bucket
        assert (last.completed, last.failed, before.completed, before.failed) == (1, 0, 0, 1)
        assert last.start <= now < last.start + 60
        assert (mail.p50, mail.p95) == (1, 10)
        assert (charts[0].p50, charts[0].p95) == (None, None)

    def test_nothing_ended_draws_nothing(self) -> None:
        assert type_charts([], 1000.0, 3600, 60) == []
