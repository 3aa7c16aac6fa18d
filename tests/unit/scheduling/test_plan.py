"""``plan``: which slot a look at a schedule fires, what it skips, and what comes next."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from trellis_actors.scheduling.model import (
    MISFIRE_GRACE,
    Misfire,
    Plan,
    Schedule,
    next_slot,
    plan,
)


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


def every(
    seconds: float = 60, *, next_run_at: float = 60, misfire: Misfire = Misfire.SKIP
) -> Schedule:
    """Anchored at 0, so its slots are 60, 120, 180, ... by default."""
    return Schedule(
        id="s",
        name="s",
        task_type="echo",
        every=seconds,
        anchor=0.0,
        next_run_at=next_run_at,
        misfire=misfire,
    )


def hourly(next_run_at: float, misfire: Misfire = Misfire.SKIP) -> Schedule:
    return Schedule(
        id="s",
        name="s",
        task_type="echo",
        cron="0 * * * *",
        next_run_at=next_run_at,
        misfire=misfire,
    )


def one_shot(moment: float, misfire: Misfire = Misfire.SKIP) -> Schedule:
    return Schedule(
        id="s", name="s", task_type="echo", at=moment, next_run_at=moment, misfire=misfire
    )


class TestPlanOnTime:
    def test_not_due(self) -> None:
        """Before its slot a schedule fires nothing and keeps its next run."""
        assert plan(every(), 59.9) == Plan(None, 60, 0)

    def test_due_exactly(self) -> None:
        """At its slot it fires that slot and moves on to the following one."""
        assert plan(every(), 60) == Plan(60, 120, 0)

    def test_no_next_run(self) -> None:
        """A schedule with nothing left to run (a spent one-shot) plans nothing."""
        assert plan(replace(every(), next_run_at=None), 1e9) == Plan(None, None, 0)

    def test_paused(self) -> None:
        """A paused schedule fires nothing, however overdue, and its next run is untouched."""
        paused = replace(every(misfire=Misfire.RUN_ONCE), paused=True)
        assert plan(paused, 60) == Plan(None, 60, 0)
        assert plan(paused, 10_000) == Plan(None, 60, 0)

    def test_default_grace(self) -> None:
        """The default grace is MISFIRE_GRACE seconds."""
        assert MISFIRE_GRACE == 30.0
        assert plan(every(), 60 + MISFIRE_GRACE) == Plan(60, 120, 0)


class TestPlanGrace:
    def test_late_within_grace_still_fires(self) -> None:
        """Up to ``grace`` seconds late a slot is not missed, under either policy."""
        for policy in Misfire:
            assert plan(every(misfire=policy), 90) == Plan(60, 120, 0)

    def test_skip_just_past_grace(self) -> None:
        """``skip``: a slot more than ``grace`` late is dropped and counted as missed."""
        assert plan(every(), 90.001) == Plan(None, 120, 1)

    def test_run_once_just_past_grace(self) -> None:
        """``run_once``: the late slot still fires, once."""
        assert plan(every(misfire=Misfire.RUN_ONCE), 90.001) == Plan(60, 120, 0)

    def test_grace_is_a_parameter(self) -> None:
        """A caller may give its own grace."""
        assert plan(every(), 70, grace=5) == Plan(None, 120, 1)
        assert plan(every(), 119, grace=59) == Plan(60, 120, 0)


class TestPlanOutage:
    def test_skip_drops_every_missed_slot(self) -> None:
        """``skip`` after an outage: no fire, and the next run is the first future slot."""
        # Slots 60..240 passed; 240 is 35 s late, beyond the grace.
        assert plan(every(), 275) == Plan(None, 300, 4)

    def test_run_once_fires_the_latest_slot_once(self) -> None:
        """``run_once`` after an outage: one fire (the latest slot) for all that was missed."""
        assert plan(every(misfire=Misfire.RUN_ONCE), 275) == Plan(240, 300, 3)

    def test_latest_slot_within_grace_fires_under_skip(self) -> None:
        """If the latest missed slot is within the grace, ``skip`` fires it and only the
        earlier ones are missed."""
        assert plan(every(), 250) == Plan(240, 300, 3)

    def test_long_outage_is_not_walked(self) -> None:
        """Ten years of one-second slots are planned in one step."""
        ten_years = 10 * 365 * 86400.0
        schedule = every(1, next_run_at=1, misfire=Misfire.RUN_ONCE)
        assert plan(schedule, ten_years + 0.5) == Plan(ten_years, ten_years + 1, int(ten_years) - 1)

    def test_cron_outage_skip(self) -> None:
        """Cron slots missed across an outage are walked and counted the same way."""
        schedule = hourly(utc("2025-01-15T10:00"))
        assert plan(schedule, utc("2025-01-15T13:20")) == Plan(None, utc("2025-01-15T14:00"), 4)

    def test_cron_outage_run_once(self) -> None:
        """``run_once`` fires the latest missed cron slot (13:00), once."""
        schedule = hourly(utc("2025-01-15T10:00"), Misfire.RUN_ONCE)
        assert plan(schedule, utc("2025-01-15T13:20")) == Plan(
            utc("2025-01-15T13:00"), utc("2025-01-15T14:00"), 3
        )


class TestPlanOneShot:
    def test_future(self) -> None:
        """A one-shot waits for its time."""
        assert plan(one_shot(5000), 4000) == Plan(None, 5000, 0)

    def test_due_fires_once_and_ends(self) -> None:
        """At its time a one-shot fires and leaves nothing to run."""
        assert plan(one_shot(5000), 5000) == Plan(5000, None, 0)

    def test_in_the_past_fires_once_under_either_policy(self) -> None:
        """A one-shot hours overdue still fires once: it has no later slot to skip to."""
        for policy in Misfire:
            assert plan(one_shot(5000, policy), 50_000) == Plan(5000, None, 0)

    def test_spent_one_shot_never_fires_again(self) -> None:
        """After its fire the next run is None, so later looks plan nothing."""
        fired = plan(one_shot(5000), 5000)
        spent = replace(one_shot(5000), next_run_at=fired.next_run_at)
        assert plan(spent, 99_999) == Plan(None, None, 0)


def _walked(schedule: Schedule, now: float, grace: float) -> Plan:
    """``plan`` written the slow, obvious way: walk every due slot."""
    slot = schedule.next_run_at
    if slot is None or slot > now or schedule.paused:
        return Plan(None, slot, 0)
    due = [slot]
    while (following := next_slot(schedule, due[-1])) is not None and following <= now:
        due.append(following)
    late = now - due[-1] > grace
    if late and schedule.misfire is Misfire.SKIP and schedule.at is None:
        return Plan(None, following, len(due))
    return Plan(due[-1], following, len(due) - 1)


class TestPlanMatchesWalking:
    @given(
        interval=st.integers(1, 3600),
        anchor=st.integers(1_600_000_000, 1_800_000_000),
        first=st.integers(1, 50),
        periods=st.floats(0, 300, allow_nan=False),
        policy=st.sampled_from(Misfire),
    )
    def test_interval_shortcut(
        self, interval: int, anchor: int, first: int, periods: float, policy: Misfire
    ) -> None:
        """The interval shortcut decides exactly what walking every slot decides."""
        schedule = Schedule(
            id="s",
            name="s",
            task_type="echo",
            every=float(interval),
            anchor=float(anchor),
            next_run_at=float(anchor + first * interval),
            misfire=policy,
        )
        now = anchor + periods * interval
        assert plan(schedule, now) == _walked(schedule, now, MISFIRE_GRACE)
