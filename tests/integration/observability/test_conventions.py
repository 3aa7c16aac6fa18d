"""Telemetry as the OpenTelemetry and Prometheus conventions have it: server spans named by
route, messaging attributes, the SDK's ``OTEL_*`` set-up, and a node's ``/metrics``."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import trellis_actors as ta
from trellis_actors.http import ServerConfig, serve
from trellis_actors.http._tracing import route_template
from trellis_actors.observability.otel import tracer_provider

_EXPORTER = InMemorySpanExporter()
TOKEN = "conventions-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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


def make_app() -> ta.App:
    app = ta.App()

    @app.task(max_attempts=1)
    async def work(ctx: ta.TaskContext, payload: object) -> str:
        return "done"

    return app


@pytest.fixture
async def node() -> AsyncIterator[tuple[ta.Runtime, str]]:
    async with ta.open_runtime(make_app(), workers=1) as rt, trio.open_nursery() as nursery:
        urls = await nursery.start(serve, rt, ServerConfig(bind="127.0.0.1:0", token=TOKEN))
        yield rt, urls[0]
        nursery.cancel_scope.cancel()


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


async def finished_spans(exporter: InMemorySpanExporter, *names: str) -> tuple[ReadableSpan, ...]:
    """The finished spans once those named have ended: a server span ends just after its
    response went out, so the client may see the response first."""
    with trio.fail_after(10):
        while True:
            finished = exporter.get_finished_spans()
            if all(named(finished, name) for name in names):
                return finished
            await trio.sleep(0.01)


async def get(url: str) -> httpx.Response:
    return await trio.to_thread.run_sync(lambda: httpx.get(url, headers=AUTH, timeout=10))


class TestServerSpans:
    """A request's span is named by its route template, never by its raw path."""

    async def test_named_by_route(
        self, node: tuple[ta.Runtime, str], spans: InMemorySpanExporter
    ) -> None:
        """GET /tasks/<id> is the span ``GET /tasks/{task_id}`` with that ``http.route``;
        a request no route matches is just ``GET``."""
        rt, url = node
        task = await rt.submit("work")
        assert (await get(f"{url}/tasks/{task.id}")).status_code == 200
        assert (await get(f"{url}/nowhere/{task.id}")).status_code == 404
        finished = await finished_spans(spans, "GET /tasks/{task_id}", "GET")
        assert not [span for span in finished if task.id in span.name]
        (found,) = named(finished, "GET /tasks/{task_id}")
        assert found.kind is trace.SpanKind.SERVER
        assert found.attributes is not None
        assert found.attributes["http.route"] == "/tasks/{task_id}"
        assert found.attributes["http.request.method"] == "GET"
        assert found.attributes["http.response.status_code"] == 200
        (unmatched,) = named(finished, "GET")
        assert unmatched.attributes is not None and "http.route" not in unmatched.attributes
        assert unmatched.attributes["http.response.status_code"] == 404

    def test_route_template(self) -> None:
        """Quart's ``<name>`` and ``<converter:name>`` become ``{name}``."""
        assert route_template("/tasks/<task_id>/events") == "/tasks/{task_id}/events"
        assert route_template("/files/<path:rest>") == "/files/{rest}"
        assert route_template("/tasks") == "/tasks"


class TestMessagingAttributes:
    """Enqueue is a ``send`` (producer) span, execution a ``process`` (consumer) span."""

    async def test_enqueue_and_process(self, spans: InMemorySpanExporter) -> None:
        """One task: system, operation, queue and message id on both spans."""
        async with ta.open_runtime(make_app(), workers=1) as rt:
            task = await rt.submit("work", queue="reports")
            await rt.wait(task.id, timeout=10)
        finished = spans.get_finished_spans()
        (enqueue,) = named(finished, "trellis.enqueue")
        (process,) = named(finished, "trellis.task work")
        assert enqueue.kind is trace.SpanKind.PRODUCER
        assert process.kind is trace.SpanKind.CONSUMER
        assert dict(enqueue.attributes or {}) | {"trellis.count": 1} == {
            "messaging.system": "trellis",
            "messaging.operation.type": "send",
            "messaging.operation.name": "enqueue",
            "messaging.destination.name": "reports",
            "messaging.message.id": task.id,
            "trellis.count": 1,
        }
        attributes = process.attributes or {}
        assert attributes["messaging.system"] == "trellis"
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.destination.name"] == "reports"
        assert attributes["messaging.message.id"] == task.id
        assert "messaging.batch.message_count" not in attributes

    async def test_batch(self, spans: InMemorySpanExporter) -> None:
        """A batch has its count and no message id; its queue only when all share one."""
        async with ta.open_runtime(make_app(), workers=0) as rt:
            await rt.submit_many([{"type": "work"}, {"type": "work"}, {"type": "work"}])
            await rt.submit_many([{"type": "work", "queue": "a"}, {"type": "work", "queue": "b"}])
        same, mixed = named(spans.get_finished_spans(), "trellis.enqueue")
        assert same.attributes is not None and mixed.attributes is not None
        assert same.attributes["messaging.batch.message_count"] == 3
        assert same.attributes["messaging.destination.name"] == "default"
        assert "messaging.message.id" not in same.attributes
        assert mixed.attributes["messaging.batch.message_count"] == 2
        assert "messaging.destination.name" not in mixed.attributes


class _Receiver(http.server.BaseHTTPRequestHandler):
    posts: list[tuple[str, str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.posts.append((self.path, self.headers.get("Content-Type")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """An OTLP/HTTP endpoint on 127.0.0.1:0 that records what is posted to it."""
    _Receiver.posts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the environment the tests run in."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    return monkeypatch


class TestTracingSetUp:
    """``tracer_provider`` follows the SDK's own ``OTEL_*`` handling."""

    def test_traces_endpoint_alone(self, otel_env: pytest.MonkeyPatch, receiver: str) -> None:
        """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone turns tracing on, exporting there over
        OTLP/HTTP."""
        otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver}/v1/traces")
        provider = tracer_provider()
        assert provider is not None
        try:
            with provider.get_tracer("test").start_as_current_span("exported"):
                pass
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
        assert _Receiver.posts == [("/v1/traces", "application/x-protobuf")]
        assert provider.resource.attributes["service.name"] == "trellis"

    def test_generic_endpoint(self, otel_env: pytest.MonkeyPatch, receiver: str) -> None:
        """OTEL_EXPORTER_OTLP_ENDPOINT is a base: spans go to its /v1/traces."""
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver)
        otel_env.setenv("OTEL_SERVICE_NAME", "billing")
        provider = tracer_provider()
        assert provider is not None
        try:
            with provider.get_tracer("test").start_as_current_span("exported"):
                pass
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
        assert [path for path, _ in _Receiver.posts] == ["/v1/traces"]
        assert provider.resource.attributes["service.name"] == "billing"

    def test_off(self, otel_env: pytest.MonkeyPatch) -> None:
        """No endpoint, OTEL_TRACES_EXPORTER=none, or OTEL_SDK_DISABLED=true: no tracing."""
        assert tracer_provider() is None
        otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
        otel_env.setenv("OTEL_TRACES_EXPORTER", "none")
        assert tracer_provider() is None
        otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        otel_env.setenv("OTEL_SDK_DISABLED", "true")
        assert tracer_provider() is None

    def test_console_and_sampler(self, otel_env: pytest.MonkeyPatch) -> None:
        """The exporter comes from OTEL_TRACES_EXPORTER and the sampler from
        OTEL_TRACES_SAMPLER, as the SDK reads them."""
        otel_env.setenv("OTEL_TRACES_EXPORTER", "console")
        otel_env.setenv("OTEL_TRACES_SAMPLER", "always_off")
        provider = tracer_provider()
        assert provider is not None
        try:
            (processor,) = provider._active_span_processor._span_processors
            assert isinstance(processor.span_exporter, ConsoleSpanExporter)  # type: ignore[attr-defined]
            assert provider.sampler.get_description() == "AlwaysOffSampler"
        finally:
            provider.shutdown()


class TestNodeMetrics:
    """``GET /metrics`` of a node: no ``_created`` series; process and Python series."""

    async def test_exposition(self, node: tuple[ta.Runtime, str]) -> None:
        rt, url = node
        await rt.wait((await rt.submit("work")).id, timeout=10)
        text = (await get(f"{url}/metrics")).text
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        assert (
            f'trellis_tasks_total{{node="{rt.node}",status="completed",type="work"}} 1.0' in lines
        )
        assert not [line for line in text.splitlines() if "_created" in line]
        assert any(line.startswith("process_cpu_seconds_total") for line in lines)
        assert any(line.startswith("process_resident_memory_bytes") for line in lines)
        assert any(line.startswith("python_gc_") for line in lines)
        assert any(line.startswith("python_info") for line in lines)
