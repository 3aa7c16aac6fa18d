"""``trellis_actors.client`` against a real ``trellis serve``: every method, every error,
the long-poll wait, and a submission sent again across a dropped connection."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from tests import asyncio_kit
from tests.e2e.client_app import Email, Sent, send_email
from tests.e2e.kit import TOKEN, Server, closed_port_url

from trellis_actors import Task, TaskNotFound, TaskStatus, ValidationError, WaitTimeout
from trellis_actors.client import AsyncClient, Client
from trellis_actors.errors import (
    ClientError,
    Conflict,
    ScheduleNotFound,
    Unauthorized,
    Unavailable,
)

NO_SUCH_ID = str(uuid.UUID(int=1))


@pytest.fixture(scope="module")
def typed_server() -> Iterator[Server]:
    """A server with the typed task types of ``tests.e2e.client_app``."""
    running = Server("--app", "tests.e2e.client_app:app", "--store", "memory://")
    yield running
    assert running.stop() == 0, "".join(running.stderr)


@pytest.fixture
def client(typed_server: Server) -> Iterator[Client]:
    with Client(typed_server.url) as client:
        yield client


def count_requests(client: Client | AsyncClient) -> list[str]:
    """The requests ``client`` sends from now on, as ``METHOD path``."""
    sent: list[str] = []
    hooks = client._http.event_hooks

    def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    async def arecord(request: httpx.Request) -> None:
        record(request)

    hooks["request"].append(arecord if isinstance(client, AsyncClient) else record)
    client._http.event_hooks = hooks
    return sent


class TestTasks:
    def test_submit_wait_get_events(self, client: Client) -> None:
        """A task submitted by name is stored, waited for, read back and its history told."""
        task = client.submit("echo", {"a": 1}, queue="client", priority=3)
        assert (task.type, task.queue, task.priority, task.payload) == (
            "echo",
            "client",
            3,
            {"a": 1},
        )
        assert task.idempotency_key  # one is made for every submission
        done = client.wait(task.id, timeout=30)
        assert (done.status, done.result) == (TaskStatus.COMPLETED, {"a": 1})
        assert client.get(task.id).finished_at == done.finished_at
        moves = [(e.from_status, e.to_status) for e in client.events(task.id)]
        assert moves[0] == (None, TaskStatus.PENDING)
        assert moves[-1] == (TaskStatus.RUNNING, TaskStatus.COMPLETED)

    def test_typed_submit_and_wait(self, client: Client) -> None:
        """A handle's payload model is sent as JSON; wait parses the result as its model."""
        task = client.submit(send_email, Email(to="ada@example.com", subject="three short words"))
        assert task.payload == {"to": "ada@example.com", "subject": "three short words"}
        done = client.wait(task, timeout=30)
        assert done.result == Sent(to="ada@example.com", words=3)

    def test_bad_payload_is_refused_locally(self, client: Client) -> None:
        """A payload that breaks the handle's contract raises ValidationError naming the
        field, without a request."""
        sent = count_requests(client)
        with pytest.raises(ValidationError, match=r"payload\.to") as caught:
            client.submit(send_email, {"to": "nobody", "subject": "hi"})  # type: ignore[misc]
        assert caught.value.field == "payload.to"
        assert sent == []

    def test_run_at_datetime_and_idempotency_key(self, client: Client) -> None:
        """run_at may be a datetime; a repeated idempotency key returns the same task."""
        later = datetime.now(UTC) + timedelta(hours=1)
        key = uuid.uuid4().hex
        first = client.submit("echo", None, run_at=later, idempotency_key=key)
        again = client.submit("echo", None, run_at=later, idempotency_key=key)
        assert (first.id, first.status) == (again.id, TaskStatus.PENDING)
        assert first.run_at == pytest.approx(later.timestamp(), abs=1e-3)
        assert client.cancel(first.id).status == TaskStatus.CANCELLED

    def test_submit_many_and_list(self, client: Client) -> None:
        """A batch is stored together; list pages through it by type, newest first."""
        kind = "echo"
        queue = f"batch-{uuid.uuid4().hex[:8]}"
        tasks = client.submit_many(
            [{"type": kind, "payload": i, "queue": queue, "delay": 3600} for i in range(3)]
            + [{"type": send_email, "payload": Email(to="a@b", subject="x"), "delay": 3600}]
        )
        assert [t.payload for t in tasks[:3]] == [0, 1, 2]
        assert tasks[3].payload == {"to": "a@b", "subject": "x"}
        first = client.list(queue=queue, limit=2)
        assert [t.id for t in first.items] == [tasks[2].id, tasks[1].id]
        rest = client.list(queue=queue, limit=2, cursor=first.next_cursor)
        assert ([t.id for t in rest.items], rest.next_cursor) == ([tasks[0].id], None)
        assert [t.id for t in client.list(queue=queue, status="pending", type=kind).items] == [
            t.id for t in reversed(tasks[:3])
        ]

    def test_cancel_and_requeue(self, client: Client) -> None:
        """cancel stops a waiting task; requeue sends a dead one back; both refuse with
        Conflict when the task is not in a state for it."""
        waiting = client.submit("echo", delay=3600)
        assert client.cancel(waiting.id).status == TaskStatus.CANCELLED
        with pytest.raises(Conflict, match="cannot move from cancelled") as caught:
            client.cancel(waiting.id)
        assert caught.value.status == 409
        dead = client.wait(client.submit("fail").id, timeout=30)
        assert dead.status == TaskStatus.DEAD
        assert client.requeue(dead.id).status == TaskStatus.QUEUED
        with pytest.raises(Conflict, match="only dead tasks can be requeued"):
            client.requeue(client.submit("echo", delay=3600).id)

    def test_wait_timeout(self, client: Client) -> None:
        """wait raises WaitTimeout when the task has not ended in time."""
        task = client.submit("echo", delay=3600)
        with pytest.raises(WaitTimeout, match=f"task {task.id} did not finish within 0.2s"):
            client.wait(task, timeout=0.2)

    def test_wait_is_a_long_poll(self, client: Client) -> None:
        """The server tells wait when the task ends: one request (two at most), not a poll
        every so often, for a task that takes a second."""
        task = client.submit("sleep", {"seconds": 1.0})
        sent = count_requests(client)
        assert client.wait(task).status == TaskStatus.COMPLETED
        assert 1 <= len(sent) <= 2, sent
        assert set(sent) == {f"GET /tasks/{task.id}/wait"}


class TestErrors:
    def test_not_found(self, client: Client) -> None:
        """An unknown task or schedule raises TaskNotFound or ScheduleNotFound."""
        for read in (client.get, client.events, client.wait, client.cancel, client.requeue):
            with pytest.raises(TaskNotFound):
                read(NO_SUCH_ID)
        with pytest.raises(ScheduleNotFound):
            client.get_schedule(NO_SUCH_ID)

    def test_refused_input_names_the_field(self, client: Client) -> None:
        """The server's 400 becomes ValidationError with its field."""
        with pytest.raises(ValidationError, match="unknown task type 'nope'") as caught:
            client.submit("nope")
        assert caught.value.field == "type"
        with pytest.raises(ValidationError) as batch:
            client.submit_many([{"type": "echo"}, {"type": "nope"}])
        assert batch.value.field == "[1].type"

    @pytest.mark.parametrize("dots", [".", ".."])
    def test_dot_ids_reach_no_other_endpoint(self, client: Client, dots: str) -> None:
        """``.`` and ``..`` as ids are not found, without a request: in a URL's path they
        would name ``/tasks/`` or ``/events`` (the live stream: a read that never ends)."""
        sent = count_requests(client)
        for read in (client.get, client.events, client.wait, client.cancel, client.requeue):
            with pytest.raises(TaskNotFound):
                read(dots)
        with pytest.raises(TaskNotFound):
            client.workflow(dots)
        for schedule_call in (client.get_schedule, client.delete_schedule, client.run_schedule):
            with pytest.raises(ScheduleNotFound):
                schedule_call(dots)
        with pytest.raises(ValidationError) as caught:
            client.signal(str(uuid.uuid4()), dots)
        assert caught.value.field == "name"
        assert sent == []

    def test_what_cannot_be_sent_is_refused_naming_the_field(self, client: Client) -> None:
        """Values JSON or HTTP cannot carry: ValidationError naming the field, before any
        request, instead of the encoder's own error."""
        sent = count_requests(client)
        hostile: list[tuple[Any, str | None]] = [
            (lambda: client.add_schedule("n1", "echo", 1, every=float("nan")), "every"),
            (lambda: client.add_schedule("n2", "echo", 1, every={1}), "every"),
            (lambda: client.add_schedule("n3", "echo", 1, every=60, queue="\ud800"), "queue"),
            (lambda: client.update_schedule(NO_SUCH_ID, payload="\ud800"), "payload"),
            (lambda: client.list(type="\ud800"), "type"),
            (lambda: client.submit("echo", 1, now=1), "now"),  # type: ignore[call-overload]
            (lambda: client.submit("echo", 1, type="other"), "type"),  # type: ignore[call-overload]
            (lambda: client.submit_many({"type": "echo"}), "items"),  # type: ignore[arg-type]
            (lambda: client.submit_many([1]), "[0]"),  # type: ignore[list-item]
            (lambda: client.submit_many([{"type": "echo", 1: 2}]), "[0]"),  # type: ignore[dict-item]
            (lambda: client.submit_many([{"type": "echo", "now": 1}]), "[0].now"),
        ]
        for call, field in hostile:
            with pytest.raises(ValidationError) as caught:
                call()
            assert caught.value.field == field, (caught.value, field)
        with pytest.raises(TaskNotFound):
            client.wait(None)  # type: ignore[call-overload]
        assert sent == []

    def test_too_large(self, secured_server: Server) -> None:
        """A body past the server's limit (413) is a ValidationError."""
        with (
            Client(secured_server.url, token=TOKEN) as client,
            pytest.raises(ValidationError, match="larger than 4096 bytes"),
        ):
            client.submit("echo", "x" * 10_000)

    def test_unauthorized(self, secured_server: Server) -> None:
        """A missing or wrong token raises Unauthorized; the right one works."""
        for token in (None, "wrong"):
            with Client(secured_server.url, token=token) as client:
                with pytest.raises(Unauthorized) as caught:
                    client.list()
                assert caught.value.status == 401
        with Client(secured_server.url, token=TOKEN) as client:
            assert client.list(limit=1).items is not None

    def test_unreachable(self) -> None:
        """Nothing listening: Unavailable, after trying again."""
        with (
            Client(closed_port_url(), timeout=2) as client,
            pytest.raises(Unavailable, match="cannot reach the Trellis server"),
        ):
            client.get(NO_SUCH_ID)

    def test_other_refusals(self, typed_server: Server) -> None:
        """Anything else the server answers is a ClientError with its status."""
        with (
            Client(typed_server.url + "/not/the/api") as client,
            pytest.raises(ClientError) as caught,
        ):
            client.list()
        assert caught.value.status == 404

    @pytest.mark.parametrize("url", ["ftp://example.com", "127.0.0.1:8080", "http://"])
    def test_bad_url(self, url: str) -> None:
        """A URL that is not http(s) with a host is refused at once, naming url."""
        with pytest.raises(ValidationError, match="url must be an http") as caught:
            Client(url)
        assert caught.value.field == "url"


class TestSchedules:
    def test_every_operation(self, client: Client) -> None:
        """add, get, list, update, pause, resume, run and delete, as the runtime's."""
        name = f"client-{uuid.uuid4().hex[:8]}"
        schedule = client.add_schedule(name, "echo", {"n": 1}, every="1h", paused=True)
        assert (schedule.name, schedule.every, schedule.paused) == (name, 3600.0, True)
        assert client.get_schedule(schedule.id) == schedule
        assert name in [s.name for s in client.list_schedules()]
        with pytest.raises(Conflict):
            client.add_schedule(name, "echo", every=60)
        assert client.update_schedule(schedule.id, priority=7).priority == 7
        assert client.resume_schedule(schedule.id).paused is False
        assert client.pause_schedule(schedule.id).paused is True
        fired = client.run_schedule(schedule.id)
        assert (fired.type, fired.payload, fired.schedule_id) == ("echo", {"n": 1}, schedule.id)
        at = datetime.now(UTC) + timedelta(days=1)
        once = client.add_schedule(f"{name}-once", send_email, Email(to="a@b", subject="s"), at=at)
        assert once.payload == {"to": "a@b", "subject": "s"}
        for made in (schedule, once):
            client.delete_schedule(made.id)
        with pytest.raises(ScheduleNotFound):
            client.delete_schedule(schedule.id)


async def _async_scenario(url: str) -> list[Any]:
    """Every kind of call of an AsyncClient, under whichever event loop runs it."""
    async with AsyncClient(url) as client:
        sent = count_requests(client)
        task = await client.submit(send_email, Email(to="ada@example.com", subject="a b"))
        done = await client.wait(task, timeout=30)
        later = await client.submit("echo", delay=3600)
        page = await client.list(type="echo", limit=1)
        cancelled = await client.cancel(later.id)
        with pytest.raises(TaskNotFound):
            await client.get(NO_SUCH_ID)
        events = await client.events(task.id)
        schedules = await client.list_schedules()
    return [done.result, page.items[0].id == later.id, cancelled.status, events[-1].to_status,
            isinstance(schedules, list), sent[0], sent[1].endswith("/wait")]  # fmt: skip


EXPECTED = [Sent(to="ada@example.com", words=2), True, TaskStatus.CANCELLED,
            TaskStatus.COMPLETED, True, "POST /tasks", True]  # fmt: skip


class TestAsyncClient:
    def test_under_trio(self, typed_server: Server) -> None:
        """The async client runs under trio."""
        assert trio.run(_async_scenario, typed_server.url) == EXPECTED

    def test_under_asyncio(self, typed_server: Server) -> None:
        """The same calls run under asyncio."""
        assert asyncio_kit.run(lambda: _async_scenario(typed_server.url)) == EXPECTED

    def test_what_cannot_be_sent_is_refused_under_both(self, typed_server: Server) -> None:
        """The async client checks as the sync one does: no request for an id of dots or
        a value JSON cannot carry."""

        async def refusals() -> list[str | None]:
            async with AsyncClient(typed_server.url) as client:
                sent = count_requests(client)
                fields: list[str | None] = []
                with pytest.raises(TaskNotFound):
                    await client.events("..")
                with pytest.raises(ValidationError) as caught:
                    await client.add_schedule("n", "echo", 1, every=float("inf"))
                fields.append(caught.value.field)
                with pytest.raises(ValidationError) as caught:
                    await client.submit_many(None)  # type: ignore[arg-type]
                fields.append(caught.value.field)
                assert sent == []
                return fields

        assert trio.run(refusals) == ["every", "items"]
        assert asyncio_kit.run(refusals) == ["every", "items"]

    def test_unreachable_under_both(self) -> None:
        """A lost connection is tried again (sleeping under either loop), then Unavailable."""

        async def get() -> None:
            async with AsyncClient(closed_port_url(), timeout=2) as client:
                await client.get(NO_SUCH_ID)

        with pytest.raises(Unavailable):
            trio.run(get)
        with pytest.raises(Unavailable):
            asyncio_kit.run(get)


# -- a submission sent again across a dropped connection -------------------------------


class DroppingProxy:
    """A TCP proxy on 127.0.0.1:0 that relays HTTP/1.1 requests to ``upstream`` one by
    one, except that it closes the client's connection instead of relaying the answer to
    the first ``POST /tasks`` — after the server has acted on it."""

    def __init__(self, upstream: str) -> None:
        url = httpx.URL(upstream)
        self.upstream = (url.host, url.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while (request := _read_message(reader)) is not None:
                with self._lock:
                    self.requests.append(request)
                    drop = request.startswith(b"POST /tasks ") and not self.dropped
                    self.dropped += drop
                with socket.create_connection(self.upstream) as up:
                    up.sendall(request)
                    response = _read_message(up.makefile("rb"))
                if drop or response is None:
                    return  # the client's connection closes with no answer
                conn.sendall(response)


def _read_message(stream: Any) -> bytes | None:
    """One HTTP/1.1 message (head and Content-Length body) from ``stream``; None at EOF."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + bytes(stream.read(length))


class TestIdempotentRetry:
    @pytest.mark.parametrize("batch", [False, True], ids=["submit", "submit_many"])
    def test_dropped_submission_is_stored_once(self, typed_server: Server, batch: bool) -> None:
        """The connection drops after the server stored the task: the client sends the
        same request again, and the server answers with the task it already has."""
        proxy = DroppingProxy(typed_server.url)
        kind = "echo"
        queue = f"dropped-{uuid.uuid4().hex[:8]}"
        try:
            with Client(proxy.url) as client:
                if batch:
                    item = {"type": kind, "payload": {"once": True}, "queue": queue, "delay": 3600}
                    (task,) = client.submit_many([item])
                else:
                    task = client.submit(kind, {"once": True}, queue=queue, delay=3600)
        finally:
            proxy.close()
        assert isinstance(task, Task) and proxy.dropped == 1
        posts = [r for r in proxy.requests if r.startswith(b"POST /tasks ")]
        assert len(posts) == 2 and posts[0] == posts[1]  # the same request, key and all
        with Client(typed_server.url) as direct:
            stored = direct.list(type=kind, queue=queue).items
        assert [t.id for t in stored] == [task.id]

    def test_repeated_keys_in_a_batch(self, client: Client) -> None:
        """A batch sent again with the same keys answers with the tasks already stored."""
        items = [{"type": "echo", "delay": 3600, "idempotency_key": uuid.uuid4().hex} for _ in "ab"]
        first = client.submit_many(items)
        again = client.submit_many(items)
        assert [t.id for t in again] == [t.id for t in first]


# -- following /events across a dropped connection ----------------------------------------


class CuttingProxy:
    """A TCP proxy on 127.0.0.1:0 that relays bytes both ways, until :meth:`cut` closes
    every connection open at that moment (as a network or a load balancer would)."""

    def __init__(self, upstream: str) -> None:
        url = httpx.URL(upstream)
        self.upstream = (url.host, url.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        #: Set once a server-sent stream's first chunk (": subscribed") went through.
        self.subscribed = threading.Event()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # closed already
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            up = socket.create_connection(self.upstream)
            with self._lock:
                self.connections += 1
                self._open += [conn, up]
            threading.Thread(target=self._pipe, args=(conn, up), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):  # cut
            while data := source.recv(65536):
                sink.sendall(data)
                if b": subscribed" in data:
                    self.subscribed.set()
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def echo_ran(client: Client, payload: Any) -> str:
    task = client.submit("echo", payload)
    assert client.wait(task, timeout=10).status is TaskStatus.COMPLETED
    return task.id


class TestFollow:
    def test_resumes_across_a_dropped_connection(self, typed_server: Server) -> None:
        """Client.follow reads every event once: after the connection is cut, it
        connects again with Last-Event-ID and goes on with exactly what came next."""
        proxy = CuttingProxy(typed_server.url)
        try:
            with Client(typed_server.url) as direct, Client(proxy.url) as client:
                first = echo_ran(direct, 1)
                events = client.follow(after=0, type="echo")
                read = []
                for recorded in events:
                    read.append(recorded)
                    if (recorded.task.id, recorded.event.to_status.value) == (first, "completed"):
                        break
                proxy.cut()
                second = echo_ran(direct, 2)
                for recorded in events:
                    read.append(recorded)
                    if (recorded.task.id, recorded.event.to_status.value) == (second, "completed"):
                        break
                events.close()
        finally:
            proxy.close()
        assert proxy.connections >= 2
        ids = [recorded.id for recorded in read]
        assert ids == sorted(set(ids))
        for task_id in (first, second):
            mine = [r.event.to_status.value for r in read if r.task.id == task_id]
            assert mine == ["pending", "queued", "running", "completed"]
        assert {r.task.type for r in read} == {"echo"}

    async def test_async_from_now_across_a_dropped_connection(self, typed_server: Server) -> None:
        """AsyncClient.follow from now: the stream's first id is where it resumes even
        before any event was read."""
        proxy = CuttingProxy(typed_server.url)
        try:
            async with AsyncClient(proxy.url) as client, AsyncClient(typed_server.url) as direct:
                events = client.follow(type="echo")
                read = []

                async def reader() -> None:
                    async for recorded in events:
                        read.append(recorded)
                        if recorded.event.to_status is TaskStatus.COMPLETED:
                            return

                with trio.fail_after(30):  # a guard against a hang only
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(reader)
                        assert await trio.to_thread.run_sync(proxy.subscribed.wait, 10)
                        proxy.cut()
                        task = await direct.submit("echo", 3)
                await events.aclose()  # type: ignore[attr-defined]
                # httpx's own generators under a stream left mid-way are finalised by
                # trio in tasks of their own: let them finish.
                await trio.testing.wait_all_tasks_blocked()
        finally:
            proxy.close()
        assert proxy.connections >= 2
        assert [r.event.to_status.value for r in read] == [
            "pending",
            "queued",
            "running",
            "completed",
        ]
        assert {r.task.id for r in read} == {task.id}
