"""Log lines: one per finished attempt, the switch that quiets them, and how a node's
lines look (logger names, trace ids, colours)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import trio
from opentelemetry.sdk.trace import TracerProvider
from structlog.testing import capture_logs

import trellis_actors as ta
from trellis_actors import testing
from trellis_actors.errors import ConfigurationError
from trellis_actors.logging import configure_logging

FIELDS = {
    "task_id", "task_type", "queue", "status", "attempt", "duration", "node", "worker", "error",
}  # fmt: skip


def make_app() -> ta.App:
    app = ta.App()

    @app.task
    async def work(ctx: ta.TaskContext, payload: object) -> str:
        return "done"

    @app.task(max_attempts=2, backoff=ta.Backoff(initial=1, maximum=1, jitter=0))
    async def boom(ctx: ta.TaskContext, payload: object) -> None:
        raise RuntimeError("boom")

    @app.task(max_attempts=1, dead_letter=False)
    async def fragile(ctx: ta.TaskContext, payload: object) -> None:
        raise ValueError("fragile")

    return app


def task_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if str(line.get("event", "")).startswith("task ")]


class TestAttemptLines:
    """Each finished attempt is one line with the fields an operator filters on."""

    async def test_each_outcome(self, autojump_clock: trio.testing.MockClock) -> None:
        """completed (info), retrying (warning), dead (error, no separate failed line),
        failed (warning): each with id, type, queue, status, attempt, duration, node,
        worker and error."""
        with capture_logs() as logs:
            async with testing.open_test_runtime(make_app(), workers=1, log_tasks="all") as rt:
                done = await rt.submit("work", queue="reports")
                await rt.wait(done.id)
                dead = await rt.submit("boom")
                await rt.wait(dead.id)
                failed = await rt.submit("fragile")
                await rt.wait(failed.id)
                node = rt.node
        lines = task_lines(logs)
        assert [(line["event"], line["log_level"], line["task_id"]) for line in lines] == [
            ("task completed", "info", done.id),
            ("task retrying", "warning", dead.id),
            ("task dead", "error", dead.id),
            ("task failed", "warning", failed.id),
        ]
        for line in lines:
            assert line.keys() >= FIELDS, line
            assert line["node"] == node
            assert line["worker"] == "worker-1"
            assert isinstance(line["duration"], float) and line["duration"] >= 0
        completed, retrying, dead_line, failed_line = lines
        assert (completed["task_type"], completed["queue"], completed["status"]) == (
            "work",
            "reports",
            "completed",
        )
        assert (completed["attempt"], completed["error"]) == (1, None)
        assert (retrying["attempt"], retrying["error"]) == (1, "RuntimeError: boom")
        assert (dead_line["attempt"], dead_line["status"]) == (2, "dead")
        assert dead_line["error"] == "RuntimeError: boom"
        assert failed_line["error"] == "ValueError: fragile"

    async def test_cancelled_while_queued(self) -> None:
        """A cancel before the start is a line too, with no worker or duration."""
        with capture_logs() as logs:
            async with testing.open_test_runtime(make_app(), workers=0, log_tasks="all") as rt:
                task = await rt.submit("work")
                await rt.cancel(task.id)
        (line,) = task_lines(logs)
        assert (line["event"], line["status"], line["worker"], line["duration"]) == (
            "task cancelled",
            "cancelled",
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("setting", "expected"),
        [
            ("all", ["task completed", "task retrying", "task dead"]),
            ("failures", ["task retrying", "task dead"]),
            ("none", []),
        ],
    )
    async def test_switch(
        self, setting: str, expected: list[str], autojump_clock: trio.testing.MockClock
    ) -> None:
        """log_tasks="failures" (the default when embedded) drops completions; "none"
        drops every attempt line."""
        with capture_logs() as logs:
            async with testing.open_test_runtime(make_app(), log_tasks=setting) as rt:
                await rt.wait((await rt.submit("work")).id)
                await rt.wait((await rt.submit("boom")).id)
        assert [line["event"] for line in task_lines(logs)] == expected

    async def test_embedded_default(self) -> None:
        """Embedded, a runtime logs failures but not completions (a node logs both)."""
        with capture_logs() as logs:
            async with testing.open_test_runtime(make_app(), workers=1) as rt:
                await rt.wait((await rt.submit("work")).id, timeout=10)
                await rt.wait((await rt.submit("fragile")).id, timeout=10)
        assert [line["event"] for line in task_lines(logs)] == ["task failed"]

    def test_bad_switch(self) -> None:
        with pytest.raises(ConfigurationError, match="log_tasks must be one of all, failures"):
            ta.Runtime(make_app(), log_tasks="some")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes the process's logging: put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
class TestNodeLines:
    """What ``configure_logging`` (the ``trellis`` commands) makes of a line."""

    def test_logger_name(self) -> None:
        """Every line names its logger, structlog's and the standard library's alike."""
        stream = io.StringIO()
        configure_logging("json", stream=stream)
        structlog.get_logger("trellis.test.named").info("from structlog")
        logging.getLogger("hypercorn.error").warning("from logging")
        first, second = (json.loads(line) for line in stream.getvalue().splitlines())
        assert (first["logger"], first["event"]) == ("trellis.test.named", "from structlog")
        assert (second["logger"], second["event"]) == ("hypercorn.error", "from logging")

    def test_trace_ids_inside_a_span(self) -> None:
        """A line logged inside a span carries its trace and span ids; one outside none."""
        stream = io.StringIO()
        configure_logging("json", stream=stream)
        logger = structlog.get_logger("trellis.test.traced")
        provider = TracerProvider()
        with provider.get_tracer("test").start_as_current_span("work") as span:
            logger.info("inside")
            logging.getLogger("trellis.test.stdlib").warning("inside too")
        logger.info("outside")
        inside, stdlib, outside = (json.loads(line) for line in stream.getvalue().splitlines())
        context = span.get_span_context()
        for line in (inside, stdlib):
            assert line["trace_id"] == format(context.trace_id, "032x")
            assert line["span_id"] == format(context.span_id, "016x")
        assert "trace_id" not in outside and "span_id" not in outside

    def test_no_color(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """NO_COLOR: console lines without ANSI escapes, even on a terminal."""
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        monkeypatch.setenv("NO_COLOR", "1")
        stream = _Terminal()
        configure_logging("console", stream=stream)
        structlog.get_logger("trellis.test.plain").warning("plain", field=1)
        assert "plain" in stream.getvalue() and "\x1b[" not in stream.getvalue()

    def test_colours(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A terminal gets colours; FORCE_COLOR gives them to a pipe too."""
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        terminal = _Terminal()
        configure_logging("console", stream=terminal)
        structlog.get_logger("trellis.test.tty").warning("coloured")
        assert "\x1b[" in terminal.getvalue()
        monkeypatch.setenv("FORCE_COLOR", "1")
        pipe = io.StringIO()
        configure_logging("console", stream=pipe)
        structlog.get_logger("trellis.test.forced").warning("coloured")
        assert "\x1b[" in pipe.getvalue()
