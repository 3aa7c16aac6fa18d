"""``AsyncClient``: the HTTP API from async code, under asyncio or trio."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx
import sniffio
import trio
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


class AsyncClient:
    """A Trellis server's HTTP API from async code, under asyncio or trio::

        async with AsyncClient("http://127.0.0.1:8080", token=...) as trellis:
            task = await trellis.submit(send_email, Email(to="a@example.com"))
            done = await trellis.wait(task, timeout=60)

    The methods are :class:`~trellis_actors.client.Client`'s, ``async``.
    Every method raises a typed error: ValidationError (with ``field``), TaskNotFound,
    ScheduleNotFound, Unauthorized, Conflict, Unavailable, or else ClientError. A request
    whose connection is lost is sent again, up to three times, when that is safe; a
    submission carries an idempotency key, so it is never stored twice.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = str(_http.check_url(url)).rstrip("/")
        self.timeout = timeout
        self._contracts: calls.Contracts = {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_http.headers(token), timeout=timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- tasks ----------------------------------------------------------------------------
    @overload
    async def submit(
        self, task: TaskHandle[P, R], payload: P, /, **options: Unpack[SubmitOptions]
    ) -> Task[R]: ...
    @overload
    async def submit(
        self, task: str, payload: Any = None, /, **options: Unpack[SubmitOptions]
    ) -> Task[Any]: ...
    async def submit(
        self,
        task: TaskHandle[Any, Any] | str,
        payload: Any = None,
        /,
        **options: Unpack[SubmitOptions],
    ) -> Task[Any]:
        """Submit one task: a handle from ``@app.task`` (its payload checked here first) or
        a type name, with :class:`~trellis_actors.rules.SubmitOptions`."""
        return await self._run(calls.submit(self._contracts, task, payload, options))

    async def submit_many(self, items: Iterable[Mapping[str, Any]]) -> builtins.list[Task[Any]]:
        """Submit ``{"type", "payload", ...}`` items in one request: all or nothing."""
        return await self._run(calls.submit_many(self._contracts, items))

    async def get(self, task_id: str) -> Task[Any]:
        return await self._run(calls.get(task_id))

    async def list(
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
        return await self._run(
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

    async def events(self, task_id: str) -> builtins.list[TaskEvent]:
        return await self._run(calls.events(task_id))

    @overload
    async def wait(self, task: Task[R], timeout: float | None = None) -> Task[R]: ...
    @overload
    async def wait(self, task: str, timeout: float | None = None) -> Task[Any]: ...
    async def wait(self, task: Task[Any] | str, timeout: float | None = None) -> Task[Any]:
        """The task once it has ended, told by the server (a long poll); WaitTimeout after
        ``timeout`` seconds. A task submitted here by handle has its result parsed."""
        return await self._run(calls.wait(self._contracts, task, timeout))

    async def cancel(self, task_id: str) -> Task[Any]:
        return await self._run(calls.cancel(task_id))

    async def requeue(self, task_id: str) -> Task[Any]:
        return await self._run(calls.requeue(task_id))

    async def cancel_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Cancel every task on its way that ``filter`` selects (see
        :func:`~trellis_actors.rules.check_filter`); how many (``dry_run``: would be)."""
        return await self._run(calls.bulk(Bulk.CANCEL, filter, dry_run))

    async def requeue_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Requeue every dead task ``filter`` selects; how many (``dry_run``: would be)."""
        return await self._run(calls.bulk(Bulk.REQUEUE, filter, dry_run))

    async def purge_many(self, *, dry_run: bool = False, **filter: Unpack[FilterFields]) -> int:
        """Delete every ended task ``filter`` selects, with its history; how many
        (``dry_run``: would be). Needs an ``admin`` token."""
        return await self._run(calls.bulk(Bulk.PURGE, filter, dry_run))

    # -- workflows ------------------------------------------------------------------------
    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send a workflow the signal ``name`` with ``payload`` (JSON): kept until the
        workflow waits for it. Raises TaskNotFound, NotAWorkflow, or WorkflowEnded once
        it has ended."""
        await self._run(calls.signal(workflow_id, name, payload))

    async def workflow(self, workflow_id: str) -> WorkflowState:
        """A workflow with its history, the signals sent to it and its steps' tasks."""
        return await self._run(calls.workflow(workflow_id))

    # -- schedules ------------------------------------------------------------------------
    async def add_schedule(
        self, name: str, task_type: str | TaskHandle[Any, Any], payload: Any = None, **spec: Any
    ) -> Schedule:
        """``every=``, ``cron=`` (with ``timezone=``) or ``at=``; and ``queue``,
        ``priority``, ``misfire``, ``paused``."""
        return await self._run(calls.add_schedule(name, task_type, payload, spec))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        return await self._run(calls.update_schedule(schedule_id, changes))

    async def list_queues(self) -> builtins.list[dict[str, Any]]:
        """Every queue: ``name``, ``depth``, ``counts`` per status, ``paused``."""
        return await self._run(calls.list_queues())

    async def pause_queue(self, name: str) -> dict[str, Any]:
        """Pause a queue on every node (needs the ``operate`` scope)."""
        return await self._run(calls.pause_queue(name))

    async def resume_queue(self, name: str) -> dict[str, Any]:
        """Resume a paused queue (needs the ``operate`` scope)."""
        return await self._run(calls.resume_queue(name))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._run(calls.pause_schedule(schedule_id))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self._run(calls.resume_schedule(schedule_id))

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._run(calls.delete_schedule(schedule_id))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._run(calls.get_schedule(schedule_id))

    async def list_schedules(self) -> builtins.list[Schedule]:
        return await self._run(calls.list_schedules())

    async def nodes(self) -> builtins.list[NodeInfo]:
        """Every node of the cluster, with its state (up, draining or lost)."""
        return await self._run(calls.nodes())

    async def run_schedule(self, schedule_id: str) -> Task[Any]:
        """Fire a schedule now, outside its slots."""
        return await self._run(calls.run_schedule(schedule_id))

    async def follow(
        self, after: int | None = None, *, task_id: str | None = None, type: str | None = None
    ) -> AsyncIterator[Recorded]:
        """Every node's transitions as ``GET /events`` streams them, each with its event id
        (``recorded.id``): those after the event ``after``, or, with None, from now on;
        optionally of one task or one type. A dropped connection is made again with
        ``Last-Event-ID``: nothing is missed or read twice. Runs until you stop reading
        (``break``, or ``aclose()`` on the iterator)."""
        following = Following(after, task_id, type)
        while True:
            request, headers = following.request()
            try:
                async with self._http.stream(
                    "GET",
                    request.path,
                    params=request.params,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout, read=None),
                ) as response:
                    if not response.is_success:
                        raise following.refused(response, await response.aread())
                    async for line in response.aiter_lines():
                        recorded = following.line(line)
                        if recorded is not None:
                            yield recorded
                error: Exception = Unavailable("the event stream ended")  # the server stopped
            except DROPPED as dropped:
                error = dropped
            await _sleep(following.dropped(self.url, error))

    # -- driving a call ---------------------------------------------------------------------
    async def _run(self, call: Call[T]) -> T:
        try:
            request = next(call)
            while True:
                try:
                    data = await self._send(request)
                except (TrellisError, Resent) as refusal:
                    request = call.throw(refusal)
                else:
                    request = call.send(data)
        except StopIteration as done:
            value: T = done.value
            return value
        except Resent as resent:
            raise resent.error from None

    async def _send(self, request: calls.Request) -> Any:
        built = _http.build(self._http, request, self.timeout)
        attempt = 1
        while True:
            try:
                response = await self._http.send(built)
            except httpx.TransportError as error:
                if not _http.may_resend(request, error, attempt):
                    raise _http.unreachable(self.url, error) from None
                await _sleep(_http.backoff(attempt))
                attempt += 1
                continue
            try:
                return _http.answer(response, request)
            except TrellisError as error:
                raise (Resent(error) if attempt > 1 else error) from None


async def _sleep(seconds: float) -> None:
    """Sleep under whichever event loop runs this (asyncio or trio)."""
    if sniffio.current_async_library() == "trio":
        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
