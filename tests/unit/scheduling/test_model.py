"""The schedule model: durations, cron checks, slots and slot keys (pure, fixed timestamps)."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from trellis_actors.errors import ValidationError
from trellis_actors.scheduling.model import (
    Misfire,
    Schedule,
    check_cron,
    first_slot,
    next_slot,
    parse_every,
    slot_key,
    zone,
)


def utc(text: str) -> float:
    """Seconds since the epoch of a UTC date-time written ``2025-03-30T01:00``."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


def local(at: float, tz: str) -> str:
    """``at`` as a local wall-clock time with its offset, e.g. ``2025-03-30T03:00+02:00``."""
    return datetime.fromtimestamp(at, ZoneInfo(tz)).isoformat(timespec="minutes")


def every(seconds: float, anchor: float = 1000.0) -> Schedule:
    return Schedule(id="s", name="s", task_type="echo", every=seconds, anchor=anchor)


def cron(expression: str, timezone: str | None = None) -> Schedule:
    return Schedule(id="s", name="s", task_type="echo", cron=expression, timezone=timezone)


def at(moment: float) -> Schedule:
    return Schedule(id="s", name="s", task_type="echo", at=moment)


def slots(schedule: Schedule, after: float, count: int) -> list[float]:
    found: list[float] = []
    for _ in range(count):
        slot = next_slot(schedule, found[-1] if found else after)
        assert slot is not None
        found.append(slot)
    return found


class TestParseEvery:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            (30, 30.0),
            (1.5, 1.5),
            ("30", 30.0),
            ("30s", 30.0),
            (" 2.5 s ", 2.5),
            ("1500ms", 1.5),
            ("5m", 300.0),
            ("2h", 7200.0),
            ("1d", 86400.0),
        ],
    )
    def test_accepts_numbers_and_durations(self, value: object, seconds: float) -> None:
        """Plain seconds and durations with ms, s, m, h or d all become seconds."""
        assert parse_every(value) == seconds

    @pytest.mark.parametrize("value", [0, 0.5, "999ms", "0s", -30, float("inf"), float("nan")])
    def test_rejects_less_than_a_second(self, value: object) -> None:
        """An interval under one second (or not finite) is refused, naming ``every``."""
        with pytest.raises(
            ValidationError, match=r"^every must be between 1 second and 10 years$"
        ) as info:
            parse_every(value)
        assert info.value.field == "every"

    @pytest.mark.parametrize("value", [True, None, "soon", "30 minutes", "5w", "-5s", [30]])
    def test_rejects_what_is_not_a_duration(self, value: object) -> None:
        """Booleans, unknown units and other types are refused, naming ``every``."""
        with pytest.raises(ValidationError, match=r"^every must be seconds or a duration") as info:
            parse_every(value)
        assert info.value.field == "every"


class TestBounds:
    """Inputs that pass a syntax check but could never work are refused up front."""

    @pytest.mark.parametrize("every", [1e300, 10**400, 10 * 365 * 86400 + 1, "4000d"])
    def test_every_has_an_upper_bound(self, every: object) -> None:
        """An interval beyond ten years (or too large for a float) names the field."""
        with pytest.raises(ValidationError, match="between 1 second and 10 years") as info:
            parse_every(every)
        assert info.value.field == "every"

    def test_cron_that_never_fires(self) -> None:
        """A valid cron expression with no possible date (30 February) is refused."""
        with pytest.raises(ValidationError, match="never fires") as info:
            check_cron("0 0 30 2 *", None)
        assert info.value.field == "cron"

    @pytest.mark.parametrize("name", ["Etc", "America", "x" * 300])
    def test_timezone_folders_and_junk(self, name: str) -> None:
        """Names of tz-data folders, or absurd ones, are unknown time zones."""
        with pytest.raises(ValidationError, match="unknown timezone") as info:
            zone(name)
        assert info.value.field == "timezone"


class TestCheckCron:
    def test_accepts_five_fields_and_a_zone(self) -> None:
        """A valid five-field expression with a known IANA zone passes."""
        check_cron("*/5 9-17 * * mon-fri", "Europe/Paris")
        check_cron("0 2 * * *", None)

    @pytest.mark.parametrize("expression", ["* * * *", "0 0 * * * *", "", None, 5])
    def test_needs_five_fields(self, expression: object) -> None:
        """Four or six fields (seconds, years) or a non-string are refused, naming ``cron``."""
        with pytest.raises(ValidationError, match="cron must have five fields") as info:
            check_cron(expression, None)
        assert info.value.field == "cron"

    @pytest.mark.parametrize("expression", ["61 * * * *", "* 25 * * *", "* * * * funday"])
    def test_rejects_out_of_range(self, expression: str) -> None:
        """Five fields that croniter cannot read are refused, naming ``cron``."""
        with pytest.raises(ValidationError, match=r"cron expression .* is not valid") as info:
            check_cron(expression, None)
        assert info.value.field == "cron"

    def test_rejects_an_unknown_zone(self) -> None:
        """An unknown time zone is refused, naming ``timezone``."""
        with pytest.raises(ValidationError, match=r"^unknown timezone 'Mars/Olympus'$") as info:
            check_cron("0 9 * * *", "Mars/Olympus")
        assert info.value.field == "timezone"


class TestZone:
    def test_none_is_utc(self) -> None:
        """No zone means UTC."""
        assert zone(None) == ZoneInfo("UTC")

    @pytest.mark.parametrize("name", [5, "", "../etc/passwd", "Not/AZone"])
    def test_rejects_bad_names(self, name: object) -> None:
        """Anything but a known IANA name is refused, naming ``timezone``."""
        with pytest.raises(ValidationError, match="timezone") as info:
            zone(name)
        assert info.value.field == "timezone"


class TestSchedule:
    def test_spec(self) -> None:
        """``spec`` reads as the schedule was written."""
        assert every(30).spec == "every 30s"
        assert every(1.5).spec == "every 1.5s"
        assert cron("0 9 * * *").spec == "cron 0 9 * * *"
        assert cron("0 9 * * *", "America/New_York").spec == "cron 0 9 * * * (America/New_York)"
        assert at(utc("2025-01-01T12:00")).spec == "at 2025-01-01T12:00:00Z"

    def test_to_dict(self) -> None:
        """``to_dict`` gives JSON-ready values: ISO times, the misfire policy's name."""
        schedule = Schedule(
            id="s",
            name="nightly",
            task_type="echo",
            cron="0 2 * * *",
            misfire=Misfire.RUN_ONCE,
            next_run_at=utc("2025-01-02T02:00"),
        )
        data = schedule.to_dict()
        assert data["misfire"] == "run_once"
        assert data["next_run_at"] == "2025-01-02T02:00:00Z"
        assert data["last_run_at"] is None
        assert data["spec"] == "cron 0 2 * * *"


class TestNextSlotEvery:
    def test_slots_are_anchored(self) -> None:
        """Interval slots fall at anchor + k * every, whatever ``after`` is."""
        schedule = every(30, anchor=1000)
        assert next_slot(schedule, 1000) == 1030
        assert next_slot(schedule, 1000.5) == 1030
        assert next_slot(schedule, 1029.999) == 1030
        assert next_slot(schedule, 1031) == 1060
        assert next_slot(schedule, 1000 + 30 * 1000 + 7) == 1000 + 30 * 1001

    def test_strictly_after(self) -> None:
        """A slot equal to ``after`` is not the next one."""
        assert next_slot(every(30, anchor=1000), 1030) == 1060

    def test_fractional_interval(self) -> None:
        """Fractional intervals step without drift."""
        schedule = every(1.5, anchor=0)
        assert slots(schedule, 0, 4) == [1.5, 3.0, 4.5, 6.0]


class TestNextSlotCron:
    def test_utc_by_default(self) -> None:
        """Without a zone, cron fields are read in UTC."""
        assert slots(cron("0 9 * * *"), utc("2025-01-15T10:00"), 2) == [
            utc("2025-01-16T09:00"),
            utc("2025-01-17T09:00"),
        ]

    def test_strictly_after_even_on_a_slot(self) -> None:
        """From a slot (or a fraction after it) the next slot is the following one."""
        schedule = cron("*/15 * * * *")
        assert next_slot(schedule, utc("2025-01-15T10:15")) == utc("2025-01-15T10:30")
        assert next_slot(schedule, utc("2025-01-15T10:15") + 0.5) == utc("2025-01-15T10:30")
        assert next_slot(schedule, utc("2025-01-15T10:15") - 0.5) == utc("2025-01-15T10:15")

    def test_time_zone_follows_daylight_saving(self) -> None:
        """09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT)."""
        schedule = cron("0 9 * * *", "America/New_York")
        assert next_slot(schedule, utc("2025-01-15T00:00")) == utc("2025-01-15T14:00")
        assert next_slot(schedule, utc("2025-07-15T00:00")) == utc("2025-07-15T13:00")

    def test_new_york_across_the_spring_change(self) -> None:
        """Across 2025-03-09 the UTC time moves by an hour; the local time stays 09:00."""
        schedule = cron("0 9 * * *", "America/New_York")
        found = slots(schedule, utc("2025-03-07T20:00"), 3)
        assert found == [utc("2025-03-08T14:00"), utc("2025-03-09T13:00"), utc("2025-03-10T13:00")]
        assert [local(s, "America/New_York")[-11:] for s in found] == ["09:00-05:00"] + [
            "09:00-04:00"
        ] * 2

    def test_missing_local_time_fires_at_the_end_of_the_gap(self) -> None:
        """Pinned croniter behaviour: 02:30 does not exist in Paris on 2025-03-30 (02:00
        jumps to 03:00), so that day's slot is 03:00 CEST (01:00 UTC); the day is not
        skipped and the next day is back to 02:30."""
        schedule = cron("30 2 * * *", "Europe/Paris")
        found = slots(schedule, utc("2025-03-28T12:00"), 3)
        assert [local(s, "Europe/Paris") for s in found] == [
            "2025-03-29T02:30+01:00",
            "2025-03-30T03:00+02:00",
            "2025-03-31T02:30+02:00",
        ]
        assert found[1] == utc("2025-03-30T01:00")

    def test_repeated_local_time_fires_twice(self) -> None:
        """Pinned croniter behaviour: 02:30 happens twice in Paris on 2025-10-26 (03:00
        falls back to 02:00), and each is a slot of its own, an hour apart."""
        schedule = cron("30 2 * * *", "Europe/Paris")
        found = slots(schedule, utc("2025-10-25T12:00"), 3)
        assert [local(s, "Europe/Paris") for s in found] == [
            "2025-10-26T02:30+02:00",
            "2025-10-26T02:30+01:00",
            "2025-10-27T02:30+01:00",
        ]
        assert found[1] - found[0] == 3600

    def test_sub_hourly_cron_across_the_gap(self) -> None:
        """Every 30 minutes in Paris keeps a 30-minute UTC rhythm over the spring change."""
        schedule = cron("*/30 * * * *", "Europe/Paris")
        found = slots(schedule, utc("2025-03-30T00:00"), 4)
        assert [b - a for a, b in itertools.pairwise(found)] == [1800.0] * 3


class TestNextSlotAt:
    def test_one_shot(self) -> None:
        """A one-shot's only slot is ``at``; once ``after`` reaches it there is none."""
        schedule = at(5000)
        assert next_slot(schedule, 4999) == 5000
        assert next_slot(schedule, 5000) is None
        assert next_slot(schedule, 6000) is None


class TestFirstSlot:
    def test_recurring_starts_at_the_next_slot(self) -> None:
        """A new interval schedule's first slot is one interval after its anchor."""
        assert first_slot(every(30, anchor=1000), 1000) == 1030
        assert first_slot(cron("0 * * * *"), utc("2025-01-15T10:20")) == utc("2025-01-15T11:00")

    def test_one_shot_in_the_past_is_due(self) -> None:
        """A one-shot whose time has passed is due at once (its slot is ``at``)."""
        assert first_slot(at(5000), 9000) == 5000


class TestSlotKey:
    def test_one_key_per_schedule_and_slot(self) -> None:
        """The key names the schedule and the slot's instant; both tell keys apart."""
        slot = utc("2025-01-15T10:00")
        assert slot_key("abc", slot) == "schedule:abc:2025-01-15T10:00:00Z"
        assert slot_key("abc", slot) == slot_key("abc", slot)
        assert slot_key("abc", slot) != slot_key("abc", slot + 60)
        assert slot_key("abc", slot) != slot_key("abd", slot)

    def test_repeated_local_time_gives_two_keys(self) -> None:
        """The two 02:30s of a fall-back day are different instants, hence two keys."""
        first = utc("2025-10-26T00:30")
        assert slot_key("s", first) != slot_key("s", first + 3600)
