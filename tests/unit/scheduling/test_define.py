"""Validating schedule definitions, and declaring schedules on an ``App``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trellis_actors import App
from trellis_actors.errors import ConfigurationError, ValidationError
from trellis_actors.scheduling.define import FIELDS, ScheduleDefinition, define
from trellis_actors.scheduling.model import Misfire

NOON = datetime(2025, 1, 1, 12, tzinfo=UTC).timestamp()


def refused(field: str, match: str, **kwargs: Any) -> None:
    """``define`` refuses ``kwargs`` with a ValidationError naming ``field``."""
    fields: dict[str, Any] = {"name": "tick", "task_type": "echo"} | kwargs
    if not {"every", "cron", "at"} & set(kwargs):
        fields["every"] = 30
    with pytest.raises(ValidationError, match=match) as info:
        define(**fields)
    assert info.value.field == field


class TestDefine:
    def test_every(self) -> None:
        """An interval is parsed to seconds; the rest takes defaults."""
        assert define("tick", "echo", every="5m") == ScheduleDefinition(
            name="tick", task_type="echo", every=300.0
        )

    def test_cron_with_zone(self) -> None:
        """A cron expression keeps its zone."""
        definition = define("daily", "echo", cron="0 9 * * *", timezone="America/New_York")
        assert (definition.cron, definition.timezone) == ("0 9 * * *", "America/New_York")
        assert definition.every is None and definition.at is None

    @pytest.mark.parametrize(
        "moment", [NOON, int(NOON), "2025-01-01T12:00:00Z", "2025-01-01T13:00:00+01:00"]
    )
    def test_at_forms(self, moment: object) -> None:
        """``at`` takes seconds since the epoch or ISO 8601 text (naive means UTC)."""
        assert define("once", "echo", at=moment).at == NOON

    def test_at_datetime(self) -> None:
        """``at`` takes an aware datetime."""
        assert define("once", "echo", at=datetime(2025, 1, 1, 12, tzinfo=UTC)).at == NOON

    def test_all_options(self) -> None:
        """Queue, priority, payload, misfire and paused are kept."""
        definition = define(
            "tick",
            "echo",
            {"n": 1},
            every=30,
            queue="low",
            priority=-3,
            misfire="run_once",
            paused=True,
        )
        assert definition.payload == {"n": 1}
        assert (definition.queue, definition.priority) == ("low", -3)
        assert definition.misfire is Misfire.RUN_ONCE
        assert definition.paused is True

    def test_fields_are_the_definition(self) -> None:
        """FIELDS lists exactly what a definition holds."""
        assert set(ScheduleDefinition.__dataclass_fields__) == FIELDS


class TestDefineRefuses:
    @pytest.mark.parametrize("name", ["", "has space", "x" * 129, None, "a/b"])
    def test_bad_name(self, name: object) -> None:
        """A name must be 1-128 safe characters."""
        refused("name", "name must be 1-128", name=name)

    def test_bad_task_type(self) -> None:
        """The task type must be a non-empty name."""
        refused("task_type", "task_type must be", task_type="")

    def test_no_spec(self) -> None:
        """Without every, cron or at, the error names ``every``."""
        with pytest.raises(ValidationError, match="give exactly one of every, cron or at") as info:
            define("tick", "echo")
        assert info.value.field == "every"

    def test_two_specs(self) -> None:
        """Both every and cron: the second one given is named."""
        refused("cron", "give exactly one of every, cron or at", every=30, cron="* * * * *")
        refused("at", "give exactly one of every, cron or at", every=30, at=NOON)

    def test_bad_cron(self) -> None:
        """A cron expression croniter cannot read names ``cron``."""
        refused("cron", "is not valid", cron="61 * * * *")
        refused("cron", "five fields", cron="0 0 * * * *")

    def test_unknown_timezone(self) -> None:
        """An unknown zone names ``timezone``."""
        refused(
            "timezone",
            "unknown timezone 'Atlantis/Capital'",
            cron="0 9 * * *",
            timezone="Atlantis/Capital",
        )

    def test_timezone_without_cron(self) -> None:
        """A zone only means something for cron."""
        refused("timezone", "timezone only applies to cron", every=30, timezone="UTC")

    def test_every_below_a_second(self) -> None:
        """An interval under a second names ``every``."""
        refused("every", "between 1 second and 10 years", every="500ms")

    def test_bad_at(self) -> None:
        """``at`` must be a date-time."""
        refused("at", "at must be an ISO 8601 date-time", at="tomorrow")
        refused("at", "at must be an ISO 8601 date-time", at=True)

    def test_payload_not_json(self) -> None:
        """A payload JSON cannot carry names ``payload``."""
        refused("payload", "JSON-serialisable", payload={1, 2})

    @pytest.mark.parametrize(
        ("field", "value", "match"),
        [
            ("queue", "", "queue must be"),
            ("queue", "q" * 129, "queue must be"),
            ("priority", 1.5, "priority must be an integer"),
            ("priority", True, "priority must be an integer"),
            ("misfire", "catch_up", "misfire must be 'skip' or 'run_once'"),
            ("paused", "yes", "paused must be true or false"),
        ],
    )
    def test_bad_option(self, field: str, value: object, match: str) -> None:
        """Each bad option is refused with its own name."""
        refused(field, match, **{field: value})


class TestAppSchedules:
    def test_schedule_declares(self) -> None:
        """``app.schedule`` validates at once and keeps the definition by name."""
        app = App()
        app.schedule("nightly", "echo", {"x": 1}, cron="0 2 * * *", misfire="run_once")
        (definition,) = app.schedules
        assert definition.name == "nightly"
        assert definition.misfire is Misfire.RUN_ONCE

    def test_schedule_validates(self) -> None:
        """A bad spec fails at declaration, naming the field."""
        with pytest.raises(ValidationError) as info:
            App().schedule("tick", "echo", every="0s")
        assert info.value.field == "every"

    def test_duplicate_name(self) -> None:
        """Two schedules of one name are a configuration mistake."""
        app = App()
        app.schedule("tick", "echo", every=30)
        with pytest.raises(ConfigurationError, match="a schedule named 'tick' is already"):
            app.schedule("tick", "echo", every=60)

    def test_periodic_registers_type_and_schedule(self) -> None:
        """``@app.periodic`` registers the task type and a schedule named after it."""
        app = App()

        @app.periodic(every="30s", queue="maintenance", max_attempts=1)
        async def refresh(ctx: object, payload: object) -> None: ...

        assert app.get("refresh").queue == "maintenance"
        assert app.get("refresh").max_attempts == 1
        (definition,) = app.schedules
        assert (definition.name, definition.task_type, definition.every) == (
            "refresh",
            "refresh",
            30.0,
        )

    def test_periodic_names(self) -> None:
        """``name=`` names the schedule; the type keeps the handler's name."""
        app = App()

        @app.periodic(cron="0 9 * * *", timezone="Europe/Paris", name="morning")
        async def report(ctx: object, payload: object) -> None: ...

        (definition,) = app.schedules
        assert (definition.name, definition.task_type) == ("morning", "report")
        assert definition.timezone == "Europe/Paris"
