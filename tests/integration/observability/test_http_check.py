"""``http_check`` against a real HTTP server on loopback that records what reaches it."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import prometheus_client
import pytest
import trio
import trio.testing

import trellis_actors as ta
from trellis_actors.observability.metrics import Metrics

LOOPBACK = ta.HttpCheckPolicy(allow=["127.0.0.1/32"])


@dataclass
class Recorder:
    """An HTTP/1.1 server on 127.0.0.1 that answers by path (``/up`` 200, ``/teapot``
    418, ``/slow`` never) and keeps every request's head."""

    url: str = ""
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            head += chunk
        line, *lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, path, _ = line.split(" ")
        headers = {}
        for header in lines:
            key, _, value = header.partition(":")
            headers[key.strip().lower()] = value.strip()
        self.requests.append((method, path, headers))
        if path.startswith("/slow"):
            await trio.sleep_forever()
        status = "418 I'm a teapot" if path.startswith("/teapot") else "200 OK"
        await stream.send_all(
            f"HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
        )


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, rec.handle, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        rec.url = f"http://127.0.0.1:{port}"
        yield rec
        nursery.cancel_scope.cancel()


def free_port_url() -> str:
    """An address nothing listens on: bind a socket, read its port, close it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def check(rt: ta.Runtime, payload: dict[str, object]) -> ta.Task:
    task = await rt.submit("http_check", payload)
    return await rt.wait(task.id, timeout=20)


def loopback_runtime(
    policy: ta.HttpCheckPolicy = LOOPBACK,
) -> AbstractAsyncContextManager[ta.Runtime]:
    return ta.open_runtime(ta.App(http_check=policy), workers=2)


class TestOptIn:
    """http_check exists only where it was enabled."""

    def test_app_has_no_http_check(self) -> None:
        """App() adds echo and sleep only."""
        assert sorted(t.name for t in ta.App()) == ["echo", "sleep"]

    def test_a_policy_enables_it(self) -> None:
        """App(http_check=policy) adds it, on the checks queue, without retries."""
        task_type = ta.App(http_check=ta.HttpCheckPolicy()).get("http_check")
        assert (task_type.queue, task_type.max_attempts) == ("checks", 1)

    async def test_unknown_without_a_policy(self) -> None:
        """Submitting http_check to a default App is refused as an unknown type."""
        async with ta.open_runtime(ta.App(), workers=0) as rt:
            with pytest.raises(ta.UnknownTaskType, match="known types: echo, sleep"):
                await rt.submit("http_check", {"url": "https://example.com/"})


class TestDefaultPolicy:
    """The default policy keeps checks off loopback, private and metadata addresses."""

    async def test_literal_loopback_refused_at_submit(self, recorder: Recorder) -> None:
        """A 127.0.0.1 URL is refused when submitted; nothing reaches the server."""
        async with ta.open_runtime(ta.App(http_check=ta.HttpCheckPolicy()), workers=2) as rt:
            with pytest.raises(ta.ValidationError, match=r"127\.0\.0\.1 is a loopback address"):
                await rt.submit("http_check", {"url": f"{recorder.url}/up"})
        assert recorder.connections == 0

    async def test_loopback_host_name_refused_when_run(self, recorder: Recorder) -> None:
        """localhost resolves to loopback: the check fails, once, and connects nowhere."""
        port = recorder.url.rsplit(":", 1)[1]
        async with ta.open_runtime(ta.App(http_check=ta.HttpCheckPolicy()), workers=2) as rt:
            done = await check(rt, {"url": f"http://localhost:{port}/up"})
        assert done.status is ta.TaskStatus.DEAD
        assert done.attempt == 1
        assert done.error is not None
        assert "http_check refuses localhost: it is a loopback address" in done.error.message
        assert recorder.connections == 0

    @pytest.mark.parametrize(
        "url",
        [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://10.1.2.3/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
        ],
    )
    async def test_internal_addresses_refused_at_submit(self, url: str) -> None:
        """Metadata, private, mapped-loopback, unspecified and multicast targets."""
        async with ta.open_runtime(ta.App(http_check=ta.HttpCheckPolicy()), workers=0) as rt:
            with pytest.raises(ta.ValidationError, match=r"payload\.url"):
                await rt.submit("http_check", {"url": url})

    async def test_metadata_stays_refused_in_an_allowed_network(self) -> None:
        """Allowing 169.254.0.0/16 does not open 169.254.169.254; naming it does."""
        wide = ta.HttpCheckPolicy(allow=["169.254.0.0/16"])
        async with ta.open_runtime(ta.App(http_check=wide), workers=0) as rt:
            with pytest.raises(ta.ValidationError, match="a cloud metadata address"):
                await rt.submit("http_check", {"url": "http://169.254.169.254/"})
            await rt.submit("http_check", {"url": "http://169.254.1.1/"})
        exact = ta.HttpCheckPolicy(allow=["169.254.169.254/32"])
        async with ta.open_runtime(ta.App(http_check=exact), workers=0) as rt:
            await rt.submit("http_check", {"url": "http://169.254.169.254/"})

    @pytest.mark.parametrize(
        ("payload", "match"),
        [
            ({"url": "ftp://example.com/"}, "http:// and https:// URLs only"),
            ({"url": "https://example.com/", "method": "POST"}, "'GET' or 'HEAD'"),
            ({"url": "https://example.com/", "method": "DELETE"}, "'GET' or 'HEAD'"),
            ({"url": "https://example.com/", "timeout": 31}, "less than or equal to 30"),
            ({"url": "https://example.com/", "timeout": 0}, "greater than 0"),
            ({"url": "https://u:p@example.com/"}, "credentials in the URL"),
            ({"url": "https://example.com/", "headers": {"Host": "x"}}, "'Host' is not allowed"),
            (
                {"url": "https://example.com/", "headers": {"authorization": "Bearer x"}},
                "'authorization' is not allowed",
            ),
            ({"url": "https://example.com/", "headers": {"Cookie": "a=b"}}, "not allowed"),
            ({"url": "https://example.com/", "name": "a b"}, r"payload\.name"),
            ({"url": "https://example.com/", "name": "x" * 65}, r"payload\.name"),
            ({"url": "https://example.com/", "body": "x"}, r"payload\.body"),
        ],
    )
    async def test_payload_refused_at_submit(self, payload: dict[str, object], match: str) -> None:
        """Scheme, method, timeout, credentials, headers and name are checked at submit."""
        async with ta.open_runtime(ta.App(http_check=ta.HttpCheckPolicy()), workers=0) as rt:
            with pytest.raises(ta.ValidationError, match=match):
                await rt.submit("http_check", payload)


class TestAllowedTarget:
    """With the recorder's address allowed, checks reach it and report what they saw."""

    async def test_up(self, recorder: Recorder) -> None:
        """A 200 from the target is ok, with a latency, named after the host."""
        async with loopback_runtime() as rt:
            done = await check(rt, {"url": f"{recorder.url}/up"})
        assert done.status is ta.TaskStatus.COMPLETED
        assert done.result["ok"] is True
        assert done.result["status_code"] == 200
        assert done.result["latency_ms"] > 0
        assert done.result["name"] == "127.0.0.1"

    async def test_only_allowed_headers_are_sent(self, recorder: Recorder) -> None:
        """The server sees the payload's allowed headers and its own Host, nothing else
        of the payload's."""
        async with loopback_runtime() as rt:
            await check(
                rt,
                {
                    "url": f"{recorder.url}/up",
                    "method": "HEAD",
                    "headers": {"User-Agent": "uptime/1", "Accept": "text/plain"},
                },
            )
        [(method, path, headers)] = recorder.requests
        assert (method, path) == ("HEAD", "/up")
        assert headers["user-agent"] == "uptime/1"
        assert headers["accept"] == "text/plain"
        assert headers["host"] == recorder.url.removeprefix("http://")
        # the client's own framing headers besides: nothing else reaches the target
        assert set(headers) <= {"host", "accept", "user-agent", "accept-encoding", "connection"}

    async def test_allowed_host_name_connects_with_its_name(self, recorder: Recorder) -> None:
        """A host allowed by name is reached at a vetted address with its own Host."""
        port = recorder.url.rsplit(":", 1)[1]
        policy = ta.HttpCheckPolicy(allow=["localhost"])
        async with loopback_runtime(policy) as rt:
            done = await check(rt, {"url": f"http://localhost:{port}/up"})
        assert done.result["ok"] is True, done.result
        assert recorder.requests[0][2]["host"] == f"localhost:{port}"

    async def test_wrong_status(self, recorder: Recorder) -> None:
        """An unexpected status is recorded as not ok, naming both codes."""
        async with loopback_runtime() as rt:
            done = await check(rt, {"url": f"{recorder.url}/teapot"})
        assert done.result["ok"] is False
        assert done.result["status_code"] == 418
        assert "expected status 200, got 418" in done.result["error"]

    async def test_expected_status(self, recorder: Recorder) -> None:
        """expected_status changes what counts as up."""
        async with loopback_runtime() as rt:
            done = await check(rt, {"url": f"{recorder.url}/teapot", "expected_status": 418})
        assert done.result["ok"] is True

    async def test_slow_target_times_out(self, recorder: Recorder) -> None:
        """A target slower than the timeout is not ok and has no status."""
        async with loopback_runtime() as rt:
            done = await check(rt, {"url": f"{recorder.url}/slow", "timeout": 0.2})
        assert done.result["ok"] is False
        assert done.result["status_code"] is None
        assert "no answer within 0.2s" in done.result["error"]

    async def test_refused_connection(self) -> None:
        """A refused connection is not ok and says why."""
        async with loopback_runtime() as rt:
            done = await check(rt, {"url": free_port_url()})
        assert done.result["ok"] is False
        assert done.result["status_code"] is None
        assert "Connect" in done.result["error"]


class TestMetrics:
    """Check metrics are labelled by the check's name and forget targets no longer checked."""

    async def observed(self, metrics: Metrics, payloads: list[dict[str, object]]) -> list[ta.Task]:
        async with loopback_runtime() as rt, trio.open_nursery() as nursery:
            await nursery.start(metrics.run, rt)
            done = [await check(rt, payload) for payload in payloads]
            await trio.testing.wait_all_tasks_blocked()  # the observer has caught up
            nursery.cancel_scope.cancel()
        return done

    async def test_labelled_by_name(self, recorder: Recorder) -> None:
        """The label is the payload's name, or the URL's host; never the URL."""
        metrics = Metrics(node="n1")
        await self.observed(
            metrics,
            [
                {"url": f"{recorder.url}/up", "name": "homepage"},
                {"url": f"{recorder.url}/teapot"},
            ],
        )
        get = metrics.registry.get_sample_value
        assert get("trellis_http_check_up", {"node": "n1", "target": "homepage"}) == 1.0
        assert get("trellis_http_check_up", {"node": "n1", "target": "127.0.0.1"}) == 0.0
        latency = get("trellis_http_check_latency_seconds", {"node": "n1", "target": "homepage"})
        assert latency is not None and latency > 0
        exposed = prometheus_client.generate_latest(metrics.registry).decode()
        assert recorder.url not in exposed

    async def test_series_expire(self, recorder: Recorder) -> None:
        """A name not checked within check_ttl leaves /metrics; a fresh one stays."""
        clock = trio.testing.MockClock()
        metrics = Metrics(check_ttl=3600, clock=clock.current_time, node="n1")
        await self.observed(metrics, [{"url": f"{recorder.url}/up", "name": "old"}])
        clock.jump(1800)
        await self.observed(metrics, [{"url": f"{recorder.url}/up", "name": "new"}])
        get = metrics.registry.get_sample_value
        assert get("trellis_http_check_up", {"node": "n1", "target": "old"}) == 1.0
        clock.jump(1801)
        assert get("trellis_http_check_up", {"node": "n1", "target": "old"}) is None
        assert get("trellis_http_check_latency_seconds", {"node": "n1", "target": "old"}) is None
        assert get("trellis_http_check_up", {"node": "n1", "target": "new"}) == 1.0
        clock.jump(1800)
        assert get("trellis_http_check_up", {"node": "n1", "target": "new"}) is None

    async def test_series_are_bounded(self, recorder: Recorder) -> None:
        """Beyond check_limit names, the least recently checked is dropped."""
        metrics = Metrics(check_limit=2, node="n1")
        await self.observed(
            metrics, [{"url": f"{recorder.url}/up", "name": n} for n in ("a", "b", "c")]
        )
        get = metrics.registry.get_sample_value
        assert get("trellis_http_check_up", {"node": "n1", "target": "a"}) is None
        assert get("trellis_http_check_up", {"node": "n1", "target": "c"}) == 1.0

    async def test_many_urls_under_one_name_do_not_grow_metrics(self, recorder: Recorder) -> None:
        """150 distinct URLs checked as "homepage" make one series per gauge."""
        metrics = Metrics(node="n1")
        await self.observed(metrics, [{"url": f"{recorder.url}/up?n=0", "name": "homepage"}])
        before = prometheus_client.generate_latest(metrics.registry).decode()
        await self.observed(
            metrics,
            [{"url": f"{recorder.url}/up?n={n}", "name": "homepage"} for n in range(1, 150)],
        )
        after = prometheus_client.generate_latest(metrics.registry).decode()
        checks = [line for line in after.splitlines() if line.startswith("trellis_http_check")]
        assert len(checks) == 2
        assert len(after) < len(before) + 500  # counters' digits, not a series per URL
        assert len(recorder.requests) == 150
