"""OpenTelemetry spans: execution is a child of the submitting trace, across a restart."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import trellis_actors as ta
from trellis_actors.stores.memory import MemoryStore

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    """One global provider per process (OpenTelemetry refuses to replace it)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    current.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER


def by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> ReadableSpan:
    (found,) = [span for span in finished if span.name.startswith(prefix)]
    return found


def make_app() -> ta.App:
    app = ta.App()

    @app.task(max_attempts=1)
    async def work(ctx: ta.TaskContext, payload: object) -> str:
        return "done"

    @app.task(max_attempts=1)
    async def broken(ctx: ta.TaskContext, payload: object) -> None:
        raise ValueError("broken on purpose")

    return app


class TestTracing:
    """Spans for enqueue and execution, linked through the trace context stored with the task."""

    async def test_parent_child_chain(self, spans: InMemorySpanExporter) -> None:
        """request → enqueue → task execution share one trace, each a child of the last."""
        tracer = trace.get_tracer("test")
        async with ta.open_runtime(make_app(), workers=2) as rt:
            with tracer.start_as_current_span("POST /tasks"):
                task = await rt.submit("work")
            await rt.wait(task.id, timeout=10)
        finished = spans.get_finished_spans()
        request = by_name(finished, "POST /tasks")
        enqueue = by_name(finished, "trellis.enqueue")
        execute = by_name(finished, "trellis.task work")
        assert enqueue.parent is not None and enqueue.parent.span_id == request.context.span_id
        assert execute.parent is not None and execute.parent.span_id == enqueue.context.span_id
        assert execute.context.trace_id == request.context.trace_id
        assert execute.attributes is not None and execute.attributes["trellis.task_id"] == task.id

    async def test_chain_survives_a_restart(self, spans: InMemorySpanExporter) -> None:
        """A task submitted by one runtime and run by the next still continues the trace."""
        store = MemoryStore()
        tracer = trace.get_tracer("test")
        async with ta.open_runtime(make_app(), store=store, workers=0) as rt:
            with tracer.start_as_current_span("submitter"):
                task = await rt.submit("work")
        async with ta.open_runtime(make_app(), store=store, workers=1) as rt:
            await rt.wait(task.id, timeout=10)
        finished = spans.get_finished_spans()
        submitter = by_name(finished, "submitter")
        execute = by_name(finished, "trellis.task work")
        assert execute.context.trace_id == submitter.context.trace_id

    async def test_failure_is_recorded(self, spans: InMemorySpanExporter) -> None:
        """A handler's exception marks its span as an error."""
        tracer = trace.get_tracer("test")
        async with ta.open_runtime(make_app(), workers=1) as rt:
            with tracer.start_as_current_span("submitter"):
                task = await rt.submit("broken")
            await rt.wait(task.id, timeout=10)
        execute = by_name(spans.get_finished_spans(), "trellis.task broken")
        assert execute.status.status_code is trace.StatusCode.ERROR
        assert [event.name for event in execute.events] == ["exception"]


class TestDirectProducers:
    """``sqlite.enqueue`` and ``postgres.enqueue`` store the producer span's context with
    the task."""

    def test_sqlite_enqueue_carries_the_trace(
        self, spans: InMemorySpanExporter, tmp_path: Path
    ) -> None:
        from trellis_actors import sqlite

        path = str(tmp_path / "tasks.db")
        with trace.get_tracer("test").start_as_current_span("request"):
            task_id = sqlite.enqueue(path, "work", {"n": 1})
        sqlite.close()
        enqueue = by_name(spans.get_finished_spans(), "trellis.enqueue")
        with closing(sqlite3.connect(path)) as conn:
            (stored,) = conn.execute(
                "SELECT trace_context FROM trellis_tasks WHERE id = ?", (task_id,)
            ).fetchone()
        assert f"{enqueue.context.span_id:016x}" in json.loads(stored)["traceparent"]

    @pytest.mark.postgres
    def test_postgres_enqueue_carries_the_trace(
        self, spans: InMemorySpanExporter, pg_url: str
    ) -> None:
        import psycopg

        from trellis_actors import postgres

        with (
            psycopg.connect(pg_url, autocommit=True) as conn,
            trace.get_tracer("test").start_as_current_span("request"),
        ):
            task_id = postgres.enqueue(conn, "work", {"n": 1})
            (stored,) = conn.execute(
                "SELECT trace_context FROM trellis_tasks WHERE id = %s", (task_id,)
            ).fetchone()
        enqueue = by_name(spans.get_finished_spans(), "trellis.enqueue")
        assert f"{enqueue.context.span_id:016x}" in stored["traceparent"]
