"""The UI's pure parts, without a browser: credentials, redirects, forms, the chart.

(They belong in ``tests/unit/ui``; they sit here while the UI is being built.)
"""

from __future__ import annotations

import pytest

from trellis_actors.errors import UnknownTaskType, ValidationError
from trellis_actors.lifecycle import Task, TaskEvent, TaskStatus, Transition
from trellis_actors.ui._forms import field_of, parse_int, parse_json, schedule_errors
from trellis_actors.ui._security import Guard, safe_next
from trellis_actors.ui._throughput import Bucket, Throughput, chart


class TestGuard:
    def test_session_cookie_is_an_hmac_not_the_token(self) -> None:
        guard = Guard.create("s3cret")
        assert "s3cret" not in guard.session_value()
        assert guard.logged_in(guard.session_value())
        assert not guard.logged_in(None)
        assert not guard.logged_in("s3cret")
        assert guard.token_matches("s3cret") and not guard.token_matches("s3cre")

    def test_open_ui_needs_no_login_but_still_checks_csrf(self) -> None:
        guard = Guard.create(None)
        assert guard.logged_in(None)
        nonce = "n" * 43
        assert guard.csrf_ok(nonce, guard.csrf_token(nonce))
        assert not guard.csrf_ok(nonce, None)
        assert not guard.csrf_ok(None, guard.csrf_token(nonce))
        assert not guard.csrf_ok("m" * 43, guard.csrf_token(nonce))

    def test_csrf_tokens_survive_a_restart_with_the_same_token(self) -> None:
        nonce = "n" * 43
        assert Guard.create("t").csrf_token(nonce) == Guard.create("t").csrf_token(nonce)
        assert Guard.create("t").csrf_token(nonce) != Guard.create("u").csrf_token(nonce)

    def test_empty_token_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            Guard.create("  ")


class TestSafeNext:
    @pytest.mark.parametrize(
        "target", ["//evil.example/ui", "https://evil.example/ui", "/ui\\@evil", "/api", "", None]
    )
    def test_anything_but_a_ui_path_goes_home(self, target: str | None) -> None:
        assert safe_next(target, "/ui/") == "/ui/"

    def test_ui_paths_are_kept(self) -> None:
        assert safe_next("/ui/tasks?status=dead", "/ui/") == "/ui/tasks?status=dead"


class TestForms:
    def test_json_errors_name_the_field(self) -> None:
        with pytest.raises(ValidationError, match="payload must be valid JSON") as caught:
            parse_json("{nope", "payload")
        assert caught.value.field == "payload"
        with pytest.raises(ValidationError, match="numbers must be finite, not nan"):
            parse_json("NaN", "payload")
        assert parse_json("  ", "payload") is None

    def test_numbers(self) -> None:
        assert parse_int(" 7 ", "priority") == 7
        assert parse_int("", "priority") is None
        with pytest.raises(ValidationError, match="priority must be a whole number"):
            parse_int("1.5", "priority")

    def test_errors_land_on_their_field(self) -> None:
        assert field_of(UnknownTaskType("x"), ("type", "form"), {}) == "type"
        assert field_of(ValidationError("x", field="secret"), ("type", "form"), {}) == "form"
        assert schedule_errors(ValidationError("bad", field="cron")) == {"when": "bad"}


def _finished(status: TaskStatus) -> Transition:
    task = Task(id="t", type="echo", queue="default", payload=None, status=status)
    return Transition(task, TaskEvent("t", TaskStatus.RUNNING, status, 0.0, 1))


class TestThroughput:
    def test_counts_per_bucket_and_forgets_old_ones(self) -> None:
        ring = Throughput(bucket=10, size=3)
        ring.record([_finished(TaskStatus.COMPLETED), _finished(TaskStatus.RETRYING)], now=5)
        ring.record([_finished(TaskStatus.FAILED)], now=15)
        assert ring.series(now=19) == [Bucket(-10, 0, 0), Bucket(0, 1, 0), Bucket(10, 0, 1)]
        ring.record([], now=45)  # the first two buckets fall out of the ring
        assert ring.series(now=45) == [Bucket(20, 0, 0), Bucket(30, 0, 0), Bucket(40, 0, 0)]

    def test_chart_scales_the_busiest_bucket_to_full_height(self) -> None:
        drawn = chart([Bucket(0, 0, 0), Bucket(10, 3, 1)], width=100, height=40)
        assert (drawn.peak, drawn.completed, drawn.failed) == (4, 3, 1)
        empty, busy = drawn.bars
        assert empty.completed_height == 0 and empty.failed_height == 0
        assert (busy.completed_y, busy.completed_height) == (10.0, 30.0)
        assert (busy.failed_y, busy.failed_height) == (0.0, 10.0)

    def test_chart_of_nothing(self) -> None:
        assert chart([]).bars == () and chart([]).peak == 0
