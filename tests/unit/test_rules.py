"""The input rules (``trellis_actors.rules``): each bound, each check and its message."""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest

from trellis_actors import App, TaskNotFound, ValidationError, rules
from trellis_actors._time import iso
from trellis_actors.errors import ScheduleNotFound
from trellis_actors.http import schemas
from trellis_actors.lifecycle import Task, TaskStatus
from trellis_actors.scheduling.model import Schedule, next_slot, slot_key
from trellis_actors.ui._render import OUT_OF_RANGE, ago, when

NOW = 1_700_000_000.0
APP = App()


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def refused(match: str) -> Any:
    """``pytest.raises`` for a ValidationError whose message contains ``match``."""
    return pytest.raises(ValidationError, match=re.escape(match))


class Unshowable:
    """A value whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class TestBounds:
    def test_times_read_as_dates_in_every_zone(self) -> None:
        """EARLIEST and LATEST are what their texts say, and show in zones of ±14 h."""
        assert iso(rules.EARLIEST) == rules.EARLIEST_TEXT
        assert iso(rules.LATEST) == rules.LATEST_TEXT
        for hours in (-14, 14):
            zone = timezone(timedelta(hours=hours))
            datetime.fromtimestamp(rules.EARLIEST, zone)
            datetime.fromtimestamp(rules.LATEST, zone)

    def test_integers_fit_postgresql(self) -> None:
        """Priorities fit int4; attempts and timeouts are bounded."""
        assert (rules.MIN_PRIORITY, rules.MAX_PRIORITY) == (-(2**31) + 1, 2**31 - 1)
        assert rules.MAX_ATTEMPTS == 1000
        assert rules.MAX_TIMEOUT == 365 * 86400

    def test_http_schemas_use_the_same_bounds(self) -> None:
        """The API's documented bounds are the rules' constants, not a copy."""
        submit = schemas.SubmitTask.model_json_schema()["properties"]
        priority = submit["priority"]["anyOf"][0]
        assert (priority["minimum"], priority["maximum"]) == (
            rules.MIN_PRIORITY,
            rules.MAX_PRIORITY,
        )
        assert submit["delay"]["anyOf"][0]["maximum"] == rules.MAX_DELAY
        assert submit["timeout"]["anyOf"][0]["maximum"] == rules.MAX_TIMEOUT
        assert submit["max_attempts"]["anyOf"][0]["maximum"] == rules.MAX_ATTEMPTS
        assert submit["idempotency_key"]["anyOf"][0]["maxLength"] == rules.MAX_KEY_LENGTH
        assert submit["queue"]["anyOf"][0]["pattern"] == rules.NO_NUL_PATTERN
        listing = schemas.ListQuery.model_json_schema()["properties"]
        assert listing["limit"]["maximum"] == rules.MAX_PAGE
        assert schemas.SCHEDULE_NAME == rules.SCHEDULE_NAME_PATTERN


class TestCheckJson:
    @pytest.mark.parametrize(
        "value",
        [
            None,
            {"a": [1, 2.5, "x", True, None]},
            ("a", "tuple"),
            "\\u0000",  # a backslash and five characters: no NUL
            "😀\u2028",
            10**3999,
            -(10**3999),
            nested(rules.MAX_JSON_DEPTH - 1),  # 64 arrays, one in the other
            TaskStatus.DEAD,  # a StrEnum is a string
        ],
    )
    def test_accepted(self, value: Any) -> None:
        """JSON every store keeps as given passes."""
        rules.check_json(value, "payload")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ({"a": ["x", "b\x00"]}, "strings must not contain NUL (\\u0000) (at payload['a'][1])"),
            (
                [{"k\x00": 1}],
                "object keys must not contain NUL (\\u0000) (at payload[0]['k\\x00'])",
            ),
            (
                {"s": "\ud800"},
                "strings must be valid Unicode (no lone surrogates) (at payload['s'])",
            ),
            ({1: "a"}, "object keys must be strings, not 1 (at payload[1])"),
            (
                {Unshowable(): "a"},
                "object keys must be strings, not <Unshowable> (at payload[<Unshowable>])",
            ),
            ([float("nan")], "numbers must be finite, not nan (at payload[0])"),
            (float("-inf"), "numbers must be finite, not -inf"),
            ({1, 2}, "set is not a JSON type"),
            ([object()], "object is not a JSON type (at payload[0])"),
            (10**4000, "integers may have at most 4000 digits"),
            (nested(rules.MAX_JSON_DEPTH), "may nest at most 64 levels deep"),
            (nested(5000), "may nest at most 64 levels deep"),
        ],
    )
    def test_refused(self, value: Any, message: str) -> None:
        """Anything else is refused, saying what and where; never a RecursionError."""
        with refused(message) as caught:
            rules.check_json(value, "payload")
        assert caught.value.field == "payload"
        assert str(caught.value).startswith("payload must be JSON-serialisable: ")

    def test_size(self) -> None:
        """At most MAX_JSON_BYTES of compact UTF-8 JSON (a string's quotes count)."""
        rules.check_json("x" * (rules.MAX_JSON_BYTES - 2), "result")
        with refused("result must be at most 1048576 bytes as JSON"):
            rules.check_json("x" * (rules.MAX_JSON_BYTES - 1), "result")
        with refused("at most 1048576 bytes"):
            rules.check_json(["é" * 1000] * 600, "result")  # 2 bytes a character

    def test_parse_json(self) -> None:
        """Text is parsed, then checked: each refusal states its rule."""
        assert rules.parse_json('{"a": [1]}', "payload") == {"a": [1]}
        for text, message in [
            ("NaN", "numbers must be finite, not nan"),
            ('"\\u0000"', "must not contain NUL"),
            ("[" * 5000 + "]" * 5000, "may nest at most 64 levels deep"),
            ("{nope", "payload must be valid JSON"),
        ]:
            with refused(message):
                rules.parse_json(text, "payload")


class TestValues:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "queue must be a non-empty string of at most 128 characters"),
            ("q" * 129, "queue must be a non-empty string of at most 128 characters"),
            (5, "queue must be a non-empty string"),
            ("a\x00", "queue: strings must not contain NUL"),
            ("\udc00", "queue: strings must be valid Unicode"),
        ],
    )
    def test_text(self, value: Any, message: str) -> None:
        with refused(message):
            rules.check_text(value, "queue")

    def test_integers_and_numbers(self) -> None:
        assert rules.check_priority(2**31 - 1) == 2**31 - 1
        with refused("priority must be an integer from -2147483647 to 2147483647"):
            rules.check_priority(2**31)
        with refused("priority must be an integer"):
            rules.check_priority(True)
        assert rules.check_number(2, "timeout") == 2.0
        for value in (float("nan"), float("inf"), 10**400, "1", False):
            with refused("timeout must be a finite number"):
                rules.check_number(value, "timeout")


class TestTimes:
    @pytest.mark.parametrize(
        ("value", "at"),
        [
            ("2030-01-01T12:00:00Z", datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()),
            ("2030-01-01T12:00:00", datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()),
            (datetime(2030, 1, 1, 12), datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()),
            (NOW, NOW),
            (rules.LATEST_TEXT, rules.LATEST),
            (rules.EARLIEST_TEXT, rules.EARLIEST),
        ],
    )
    def test_accepted(self, value: Any, at: float) -> None:
        """ISO text (naive means UTC), datetimes and epoch seconds, within the range."""
        assert rules.parse_time(value, "at") == at

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01T00:00:00+14:00",  # year 0 in UTC
            "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
            "9999-12-30T00:00:01Z",
            1e13,
            -1e12,
            10**400,
        ],
    )
    def test_out_of_range(self, value: Any) -> None:
        """Times every store and ``datetime`` cannot hold in every zone are refused."""
        with refused("at must be between 0001-01-02T00:00:00Z and 9999-12-30T00:00:00Z"):
            rules.parse_time(value, "at")

    @pytest.mark.parametrize("value", ["soon", True, None, [2030], "2030-01-01" + " " * 60])
    def test_not_a_time(self, value: Any) -> None:
        with refused("run_at must be an ISO 8601 date-time"):
            rules.parse_time(value, "run_at")

    def test_delay(self) -> None:
        """A delay is finite, from 0 to ten years, and ends before LATEST."""
        assert rules.resolve_run_at(0, None, NOW) is None
        assert rules.resolve_run_at(60, None, NOW) == NOW + 60
        for delay in (1e12, -1, rules.MAX_DELAY + 1):
            with refused("delay must be >= 0 seconds and at most 315360000"):
                rules.resolve_run_at(delay, None, NOW)
        with refused("delay must end before 9999-12-30T00:00:00Z"):
            rules.resolve_run_at(60, None, rules.LATEST - 30)
        with refused("give delay or run_at, not both"):
            rules.resolve_run_at(1, NOW, NOW)

    def test_a_datetime_whose_zone_fails_is_refused(self) -> None:
        """A caller's tzinfo that raises is a bad run_at, not its own error."""

        class Broken(tzinfo):
            def utcoffset(self, dt: datetime | None) -> timedelta:
                raise RuntimeError("no offset")

        with refused("run_at must be an ISO 8601 date-time") as caught:
            rules.resolve_run_at(None, datetime(2030, 1, 1, tzinfo=Broken()), NOW)
        assert caught.value.field == "run_at"


class TestNewTask:
    def test_defaults_come_from_the_type(self) -> None:
        task = rules.new_task(APP, "echo", {"a": 1}, NOW)
        assert (task.queue, task.priority, task.max_attempts, task.run_at) == (
            "default",
            0,
            3,
            None,
        )

    def test_none_is_the_default_for_every_option(self) -> None:
        """An option given as None is left out (as JSON ``null`` is over HTTP)."""
        given = dict.fromkeys(rules.SUBMIT_FIELDS)
        assert rules.new_task(APP, "echo", None, NOW, **given) == rules.new_task(
            APP, "echo", None, NOW
        )

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"queue": ""}, "queue"),
            ({"priority": 2**63}, "priority"),
            ({"max_attempts": 1001}, "max_attempts"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": rules.MAX_TIMEOUT * 2}, "timeout"),
            ({"idempotency_key": "k" * 256}, "idempotency_key"),
            ({"run_at": "9999-12-31T23:59:59-14:00"}, "run_at"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_refused(self, fields: dict[str, Any], field: str) -> None:
        with pytest.raises(ValidationError) as caught:
            rules.new_task(APP, "echo", None, NOW, **fields)
        assert caught.value.field == field

    def test_batch_names_the_item(self) -> None:
        """A batch is refused whole, naming the item and its field."""
        items: list[Any] = [{"type": "echo"}] * 3 + [{"type": "echo", "priority": 2**40}]
        with refused("item 3: priority must be an integer from") as caught:
            rules.new_tasks(APP, items, now=NOW)
        assert caught.value.field == "[3].priority"
        with pytest.raises(ValidationError, match="item 1 must be a mapping") as caught:
            rules.new_tasks(APP, [{"type": "echo"}, "echo"], now=NOW)
        assert caught.value.field == "[1]"
        assert len(rules.new_tasks(APP, items[:3], now=NOW)) == 3


class TestReading:
    @pytest.mark.parametrize(
        ("filters", "field", "message"),
        [
            ({"type": "\x00"}, "type", "type: strings must not contain NUL"),
            ({"queue": "q" * 129}, "queue", "at most 128 characters"),
            ({"cursor": "abc"}, "cursor", "cursor must be a task id"),
            ({"status": "sleepy"}, "status", "unknown status 'sleepy'"),
            ({"limit": 0}, "limit", "limit must be an integer from 1 to 1000"),
        ],
    )
    def test_listing(self, filters: dict[str, Any], field: str, message: str) -> None:
        query = {"status": None, "type": None, "queue": None, "limit": 50, "cursor": None}
        with refused(message) as caught:
            rules.check_listing(**(query | filters))
        assert caught.value.field == field

    def test_ids(self) -> None:
        """Ids with NUL, lone surrogates or over 128 characters name nothing."""
        assert rules.possible_id("01a22e7f-76e0-7000-b830-706349926201")
        for impossible in ("", "a\x00", "\ud800", "x" * 129, 5, None):
            assert not rules.possible_id(impossible)
        with pytest.raises(TaskNotFound, match=re.escape("no task with id 'a\\x00'")):
            rules.check_task_id("a\x00")
        with pytest.raises(ScheduleNotFound, match=r"no schedule with id 'xxxx.*…$"):
            rules.check_schedule_id("x" * 5000)


class TestScheduleSpecs:
    def test_cron_and_zone(self) -> None:
        rules.check_cron("0 9 * * mon-fri", "Europe/Paris")
        with refused("cron must have five fields"):
            rules.check_cron("0 " * 200 + "* * * *", None)
        with refused("unknown timezone"):
            rules.zone("Europe/Paris\x00")
        with refused("unknown timezone 'xxxx"):
            rules.zone("x" * 5000)

    def test_every(self) -> None:
        assert rules.parse_every("10d") == 864000
        with refused("every must be between 1 second and 10 years"):
            rules.parse_every(1e12)


class TestShowingStoredValues:
    """Times a store already holds that ``datetime`` cannot show read as null, not errors."""

    def test_iso(self) -> None:
        for at in (1e13, -1e12, 1e300):
            assert iso(at) is None
        assert iso(0.0) == "1970-01-01T00:00:00Z"

    def test_task_and_schedule(self) -> None:
        far = Task("t", "echo", "q", None, TaskStatus.PENDING, run_at=1e13, created_at=NOW)
        assert (far.to_dict()["run_at"], far.to_dict()["created_at"]) == (None, iso(NOW))
        once = Schedule(id="s", name="s", task_type="echo", at=-1e12, next_run_at=-1e12)
        assert (once.to_dict()["at"], once.to_dict()["next_run_at"]) == (None, None)
        assert once.spec == "at a time out of range"
        with pytest.raises(ValueError, match="out of the range of datetime"):
            slot_key("s", -1e12)

    def test_slots_end_within_the_range(self) -> None:
        """An interval schedule's slots stop at LATEST rather than run past datetime."""
        every = Schedule(id="s", name="s", task_type="echo", every=86400.0, anchor=0.0)
        assert next_slot(every, rules.LATEST - 100) == rules.LATEST
        assert next_slot(every, rules.LATEST) is None
        assert next_slot(every, NOW) is not None

    def test_ui(self) -> None:
        assert when(1e13) == ago(1e13) == OUT_OF_RANGE
        assert when(0.0) == "1970-01-01 00:00:00 UTC"


class Count(enum.IntEnum):
    ONE = 1


def test_int_enums_are_integers() -> None:
    """An IntEnum in a payload is an integer."""
    rules.check_json({"n": Count.ONE}, "payload")
