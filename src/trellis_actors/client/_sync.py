"""``Client``: the HTTP API from synchronous code (Django, Flask, scripts)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx
from typing_extensions import Unpack

from ..contracts import P, R, TaskHandle
from ..decisions import Bulk
from ..errors import TrellisError, Unavailable
from ..lifecycle import Recorded, Task, TaskEvent, TaskStatus
from ..rules import FilterFields, SubmitOptions
from ..scheduling.model import Schedule
from ..stores.base import Page
from ..stores.nodes import NodeInfo
from ..workflows import WorkflowState
from . import _calls as calls
from . import _http
from ._calls import Call, Resent
from ._events import DROPPED, Following

T = TypeVar("T")


class Client:
    """A Trellis server's HTTP API from synchronous code::

        with Client("http://127.0.0.1:8080", token=...) as trellis:
            task = trellis.submit(send_email, Email(to="a@example.com"))
            done = trellis.wait(task, timeout=60)

    Every method raises a typed error: ValidationError (with ``field``), TaskNotFound,
    ScheduleNotFound, Unauthorized, Conflict, Unavailable, or else ClientError. A request
    whose connection is lost is sent again, up to three times, when that is safe; a
    submission carries an idempotency key, so it is never stored twice.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = str(_http.check_url(url)).rstrip("/")
        self.timeout = timeout
        self._contracts: calls.Contracts = {}
        self._http = httpx.Client(base_url=self.url, headers=_http.headers(token), timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- tasks ----------------------------------------------------------------------------
    @overload
    def submit(
        self, task: TaskHandle[P, R], payload: P, /, **options: Unpack[SubmitOptions]
    ) -> Task[R]: ...
    @overload
    def submit(
        self, task: str, payload: Any = None, /, **options: Unpack[SubmitOptions]
    ) -> Task[Any]: ...
    def submit(
        self,
        task: TaskHandle[Any, Any] | str,
        payload: Any = None,
        /,
        **options: Unpack[SubmitOptions],
    ) -> Task[Any]:
        """Submit one task: a handle from ``@app.task`` (its payload checked here first) or
        a type name, with :class:`~trellis_actors.rules.SubmitOptions`."""
        return self._run(calls.submit(self._contracts, task, payload, options))

    def submit_many(self, items: Iterable[Mapping[str, Any]]) -> builtins.list[Task[Any]]:
        """Submit ``{"type", "payload", ...}`` items in one request: all or nothing."""
        return self._run(calls.submit_many(self._contracts, items))

    def get(self, task_id: str) -> Task[Any]:
        return self._run(calls.get(task_id))

    def list(
        self,
        *,
        status: TaskStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include: Iterable[str] = (),
        id_prefix: str | None = None,
        idempotency_key: str | None = None,
        schedule_id: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> Page:
        """A page of tasks, newest first; pass ``next_cursor`` back as ``cursor``. Items
        are summaries without ``payload`` and ``result`` unless ``include`` names them
        (``include=("payload", "result")``)."""
        return self._run(
            calls.list_tasks(
                status=status,
                type=type,
                queue=queue,
                limit=limit,
                cursor=cursor,
                include=include,
                id_prefix=id_prefix,
                idempotency_key=idempotency_key,
                schedule_id=schedule_id,
                created_after=created_after,
                created_before=created_before,
            )
        )

    def events(self, task_id: str) -> builtins.list[TaskEvent]:
        return self._run(calls.events(task_id))

    @overload
    def wait(self, task: Task[R], timeout: float | None = None) -> Task[R]: ...
    @overload
    def wait(self, task: str, timeout: float | None = None) -> Task[Any]: ...
    def wait(self, task: Task[Any] | str, timeout: float | None = None) -> Task[Any]:
        """The task once it has ended, told by the server (a long poll); WaitTimeout after
        ``timeout`` seconds. A task submitted here by handle has its result parsed."""
        return self._run(calls.wait(self._contracts, task, timeout))

    def cancel(self, task_id: str) -> Task[Any]:
        return self._run(calls.cancel(task_id))

    def requeue(self, task_id: str) -> Task[Any]:
        return self._run(calls.requeue(task_id))

    def cancel_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Cancel every task on its way that ``filter`` selects (see
        :func:`~trellis_actors.rules.check_filter`); how many (``dry_run``: would be)."""
        return self._run(calls.bulk(Bulk.CANCEL, filter, dry_run))

    def requeue_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Requeue every dead task ``filter`` selects; how many (``dry_run``: would be)."""
        return self._run(calls.bulk(Bulk.REQUEUE, filter, dry_run))

    def purge_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Delete every ended task ``filter`` selects, with its history; how many
        (``dry_run``: would be). Needs an ``admin`` token."""
        return self._run(calls.bulk(Bulk.PURGE, filter, dry_run))

    # -- workflows ------------------------------------------------------------------------
    def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send a workflow the signal ``name`` with ``payload`` (JSON): kept until the
        workflow waits for it. Raises TaskNotFound, NotAWorkflow, or WorkflowEnded once
        it has ended."""
        self._run(calls.signal(workflow_id, name, payload))

    def workflow(self, workflow_id: str) -> WorkflowState:
        """A workflow with its history, the signals sent to it and its steps' tasks."""
        return self._run(calls.workflow(workflow_id))

    # -- schedules ------------------------------------------------------------------------
    def add_schedule(
        self, name: str, task_type: str | TaskHandle[Any, Any], payload: Any = None, **spec: Any
    ) -> Schedule:
        """``every=``, ``cron=`` (with ``timezone=``) or ``at=``; and ``queue``,
        ``priority``, ``misfire``, ``paused``."""
        return self._run(calls.add_schedule(name, task_type, payload, spec))

    def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        return self._run(calls.update_schedule(schedule_id, changes))

    def list_queues(self) -> builtins.list[dict[str, Any]]:
        """Every queue: ``name``, ``depth``, ``counts`` per status, ``paused``."""
        return self._run(calls.list_queues())

    def pause_queue(self, name: str) -> dict[str, Any]:
        """Pause a queue on every node (needs the ``operate`` scope)."""
        return self._run(calls.pause_queue(name))

    def resume_queue(self, name: str) -> dict[str, Any]:
        """Resume a paused queue (needs the ``operate`` scope)."""
        return self._run(calls.resume_queue(name))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        return self._run(calls.pause_schedule(schedule_id))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        return self._run(calls.resume_schedule(schedule_id))

    def delete_schedule(self, schedule_id: str) -> None:
        self._run(calls.delete_schedule(schedule_id))

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._run(calls.get_schedule(schedule_id))

    def list_schedules(self) -> builtins.list[Schedule]:
        return self._run(calls.list_schedules())

    def nodes(self) -> builtins.list[NodeInfo]:
        """Every node of the cluster, with its state (up, draining or lost)."""
        return self._run(calls.nodes())

    def run_schedule(self, schedule_id: str) -> Task[Any]:
        """Fire a schedule now, outside its slots."""
        return self._run(calls.run_schedule(schedule_id))

    def follow(
        self, after: int | None = None, *, task_id: str | None = None, type: str | None = None
    ) -> Iterator[Recorded]:
        """Every node's transitions as ``GET /events`` streams them, each with its event id
        (``recorded.id``): those after the event ``after``, or, with None, from now on;
        optionally of one task or one type. A dropped connection is made again with
        ``Last-Event-ID``: nothing is missed or read twice. Runs until you stop reading
        (``break``, or ``close()`` on the iterator)."""
        following = Following(after, task_id, type)
        while True:
            request, headers = following.request()
            try:
                with self._http.stream(
                    "GET",
                    request.path,
                    params=request.params,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout, read=None),
                ) as response:
                    if not response.is_success:
                        raise following.refused(response, response.read())
                    for line in response.iter_lines():
                        recorded = following.line(line)
                        if recorded is not None:
                            yield recorded
                error: Exception = Unavailable("the event stream ended")  # the server stopped
            except DROPPED as dropped:
                error = dropped
            time.sleep(following.dropped(self.url, error))

    # -- driving a call ---------------------------------------------------------------------
    def _run(self, call: Call[T]) -> T:
        try:
            request = next(call)
            while True:
                try:
                    data = self._send(request)
                except (TrellisError, Resent) as refusal:
                    request = call.throw(refusal)
                else:
                    request = call.send(data)
        except StopIteration as done:
            value: T = done.value
            return value
        except Resent as resent:
            raise resent.error from None

    def _send(self, request: calls.Request) -> Any:
        built = _http.build(self._http, request, self.timeout)
        attempt = 1
        while True:
            try:
                response = self._http.send(built)
            except httpx.TransportError as error:
                if not _http.may_resend(request, error, attempt):
                    raise _http.unreachable(self.url, error) from None
                time.sleep(_http.backoff(attempt))
                attempt += 1
                continue
            try:
                return _http.answer(response, request)
            except TrellisError as error:
                raise (Resent(error) if attempt > 1 else error) from None
