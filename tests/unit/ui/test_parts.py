"""The UI's pure parts, without a browser: credentials, redirects, forms, the chart.

(They belong in ``tests/unit/ui``; they sit here while the UI is being built.)
"""

from __future__ import annotations

import pytest
import trio

from trellis_actors.errors import UnknownTaskType, ValidationError
from trellis_actors.http.auth import Auth
from trellis_actors.lifecycle import Task, TaskEvent, TaskStatus, Transition
from trellis_actors.stores.sessions import Session
from trellis_actors.ui._forms import field_of, parse_int, parse_json, schedule_errors
from trellis_actors.ui._security import Guard, safe_next
from trellis_actors.ui._sessions import LoginLimiter, SessionPolicy
from trellis_actors.ui._throughput import Bucket, Throughput, chart


class TestGuard:
    def test_open_ui_needs_no_login_but_still_checks_csrf(self) -> None:
        """Without tokens no login is required; CSRF is checked all the same."""
        guard = Guard.create(Auth())
        assert not guard.required
        nonce = "n" * 43
        assert guard.csrf_ok(nonce, guard.csrf_token(nonce))
        assert not guard.csrf_ok(nonce, None)
        assert not guard.csrf_ok(None, guard.csrf_token(nonce))
        assert not guard.csrf_ok("m" * 43, guard.csrf_token(nonce))

    def test_csrf_tokens_survive_a_restart_with_the_same_tokens(self) -> None:
        """The CSRF key comes from the tokens, so every node with them agrees."""
        nonce = "n" * 43
        assert Guard.create(Auth("t")).csrf_token(nonce) == Guard.create(Auth("t")).csrf_token(
            nonce
        )
        assert Guard.create(Auth("t")).csrf_token(nonce) != Guard.create(Auth("u")).csrf_token(
            nonce
        )


class TestSafeNext:
    @pytest.mark.parametrize(
        "target",
        [
            "//evil.example/ui",
            "https://evil.example/ui",
            "javascript:alert(1)",
            "/ui\\@evil",
            "/ui/\\evil.example",
            "/ui/..//evil.example",
            "/ui//evil.example",
            "/ui/../evil",
            "/ui/./tasks",
            "/ui/%2e%2e/%2fevil.example",
            "/ui/%2F%2Fevil.example",
            "/ui/%252F%252Fevil.example",
            "/ui/%5Cevil.example",
            "/ui/..",
            "/ui/\tx",
            "/\t/evil.example",
            "/ui\r\nLocation: https://evil.example",
            "/uix",
            "/api",
            "ui/tasks",
            "http:/ui/tasks",
            "",
            None,
        ],
    )
    def test_anything_but_a_ui_path_goes_home(self, target: str | None) -> None:
        """Open-redirect attempts, plain and encoded, all land on the default."""
        assert safe_next(target, "/ui/") == "/ui/"

    @pytest.mark.parametrize(
        "target", ["/ui", "/ui/", "/ui/tasks?status=dead", "/ui/tasks/0193-abc", "/ui/dead#x"]
    )
    def test_ui_paths_are_kept(self, target: str) -> None:
        assert safe_next(target, "/ui/") == target


class TestLoginLimiter:
    async def test_five_failures_then_wait(self, autojump_clock: object) -> None:
        """Five failures a minute from one address, then it waits; others do not."""
        limiter = LoginLimiter()
        for _ in range(5):
            assert limiter.wait("10.0.0.1") == 0
            limiter.failed("10.0.0.1")
        assert limiter.wait("10.0.0.1") == 60
        assert limiter.wait("10.0.0.2") == 0
        await trio.sleep(30)
        assert limiter.wait("10.0.0.1") == 30
        await trio.sleep(30)
        assert limiter.wait("10.0.0.1") == 0


class TestSessionPolicy:
    def test_idle_and_absolute(self) -> None:
        policy = SessionPolicy(idle=10, absolute=100)
        session = Session("k", "ci", ("read",), created_at=0, seen_at=0, expires_at=100)
        assert policy.alive(session, 9.9) and not policy.alive(session, 10)
        later = Session("k", "ci", ("read",), created_at=0, seen_at=95, expires_at=100)
        assert policy.alive(later, 99) and not policy.alive(later, 100)

    def test_idle_longer_than_absolute_refused(self) -> None:
        with pytest.raises(ValueError, match="at most its absolute"):
            SessionPolicy(idle=10, absolute=5)


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
