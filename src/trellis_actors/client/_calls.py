"""What each client method asks the server, and what it makes of the answers — without I/O.

Every method is a generator that yields :class:`Request`\\ s and receives each one's decoded
JSON body (``None`` for a ``204``), returning the method's value. :class:`~.Client` drives
it with ``httpx.Client`` and :class:`~.AsyncClient` with ``httpx.AsyncClient``, so the two
share one copy of the logic: paths, bodies, local validation, parsing and the ``wait`` loop.
A refusal is thrown into the generator (as a typed error, or as :class:`Resent` when the
request had to be sent again after a lost connection), which may make something of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from .. import rules
from .._time import iso, parse_iso
from ..contracts import Contract, TaskHandle
from ..decisions import Bulk
from ..errors import ClientError, Conflict, ValidationError, WaitTimeout
from ..lifecycle import Task, TaskError, TaskEvent, TaskStatus
from ..scheduling.model import Misfire, Schedule
from ..stores.base import Page
from ..stores.nodes import NodeInfo
from ..workflows import EntryKind, EntryOutcome, HistoryEntry, SignalRecord, WorkflowState

T = TypeVar("T")

#: Longest one ``GET /tasks/{id}/wait`` is asked to hold (the server's cap).
LONG_POLL = 30.0

#: Which lost connections a request is sent again after: ``"always"`` for requests that
#: do the same however often they arrive (reads, keyed submissions, pause, cancel, ...);
#: ``"connect"`` only when the connection was never made, so the server never saw it.
RetryWhen = Literal["always", "connect"]

_NO_BODY: Any = object()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of a method."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = _NO_BODY
    retry: RetryWhen = "always"
    #: Seconds the server may hold the request (a long poll): the read timeout allows it.
    hold: float = 0.0

    @property
    def has_body(self) -> bool:
        return self.body is not _NO_BODY


class Resent(Exception):
    """A request sent again after a lost connection, then refused: the first may have
    gone through. ``error`` is the refusal."""

    def __init__(self, error: ClientError | Exception) -> None:
        super().__init__(str(error))
        self.error = error


Call = Generator[Request, Any, T]
Contracts = dict[str, Contract]


# -- tasks ----------------------------------------------------------------------------


def submit(
    contracts: Contracts, task: TaskHandle[Any, Any] | str, payload: Any, options: Mapping[str, Any]
) -> Call[Task[Any]]:
    clash = sorted({"type", "payload"} & options.keys())  # arguments, not options
    if clash:
        raise ValidationError(f"unknown field {clash[0]!r}", field=clash[0])
    (body,) = _submissions(contracts, [{**options, "type": task, "payload": payload}])
    data = yield Request("POST", "/tasks", body=body)
    return Task.from_dict(data)


def submit_many(contracts: Contracts, items: Iterable[Mapping[str, Any]]) -> Call[list[Task[Any]]]:
    bodies = _submissions(contracts, items, batch=True)
    if not bodies:
        return []
    data = yield Request("POST", "/tasks", body=bodies)
    return [Task.from_dict(item) for item in data]


def _submissions(
    contracts: Contracts, items: Iterable[Mapping[str, Any]], *, batch: bool = False
) -> list[dict[str, Any]]:
    """The JSON bodies of submissions, checked here by the runtime's own rules (so a bad
    payload is refused without a round trip), each with an idempotency key so that a
    request sent again after a lost connection cannot create a task twice."""
    items = [dict(item) for item in rules.batch_items(items)]
    for item in items:
        if "type" in item and isinstance(item["type"], TaskHandle):
            contracts[item["type"].name] = item["type"].contract
    now = time.time()
    if batch:
        checked = rules.new_tasks(rules.AnyTypes(), items, now=now)
    else:
        options = dict(items[0])
        checked = [
            rules.new_task(
                rules.AnyTypes(),
                options.pop("type"),
                options.pop("payload", None),
                now,
                **options,
            )
        ]
    bodies = []
    for item, new in zip(items, checked, strict=True):
        body = {name: value for name, value in item.items() if value is not None}
        body["type"] = new.type
        body["payload"] = new.payload  # its JSON form: a model instance is sent dumped
        if body.get("run_at") is not None:
            body["run_at"] = iso(rules.parse_time(body["run_at"], "run_at"))
        body.setdefault("idempotency_key", uuid.uuid4().hex)
        bodies.append(body)
    return bodies


def get(task_id: str) -> Call[Task[Any]]:
    return Task.from_dict((yield Request("GET", _task(task_id))))


def list_tasks(
    *,
    status: TaskStatus | str | None,
    type: str | None,
    queue: str | None,
    limit: int,
    cursor: str | None,
    include: Iterable[str] = (),
    id_prefix: str | None = None,
    idempotency_key: str | None = None,
    schedule_id: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
) -> Call[Page]:
    params: dict[str, object] = {
        "status": status,
        "type": type,
        "queue": queue,
        "limit": limit,
        "cursor": cursor,
    }
    params.update(
        id_prefix=id_prefix,
        idempotency_key=idempotency_key,
        schedule_id=schedule_id,
        created_after=created_after,
        created_before=created_before,
    )
    query = {name: str(value) for name, value in params.items() if value is not None}
    if wanted := ",".join(include):
        query["include"] = wanted
    data = yield Request("GET", "/tasks", params=query)
    return Page([Task.from_dict(item) for item in data["items"]], data["next_cursor"])


def events(task_id: str) -> Call[list[TaskEvent]]:
    data = yield Request("GET", _task(task_id) + "/events")
    return [TaskEvent.from_dict(item) for item in data["items"]]


def wait(contracts: Contracts, task: Task[Any] | str, timeout: float | None) -> Call[Task[Any]]:
    """Long polls until the task has ended; WaitTimeout after ``timeout`` seconds."""
    task_id = rules.check_task_id(task.id if isinstance(task, Task) else task)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        hold = (
            LONG_POLL if deadline is None else max(0.0, min(LONG_POLL, deadline - time.monotonic()))
        )
        data = yield Request(
            "GET", _task(task_id) + "/wait", params={"timeout": f"{hold:.3f}"}, hold=hold
        )
        done = Task.from_dict(data)
        if done.status.terminal:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"task {task_id} did not finish within {timeout}s")
    contract = contracts.get(task.type) if isinstance(task, Task) else None
    if contract is not None and done.result is not None:
        return replace(done, result=contract.read(done.result))
    return done


def cancel(task_id: str) -> Call[Task[Any]]:
    """A cancel sent again after a lost connection may find its first try done: a 409 then
    is success when the task is cancelled."""
    try:
        data = yield Request("DELETE", _task(task_id))
    except Resent as resent:
        if not isinstance(resent.error, Conflict):
            raise resent.error from None
        data = yield Request("GET", _task(task_id))
        if data["status"] != TaskStatus.CANCELLED:
            raise resent.error from None
    return Task.from_dict(data)


def requeue(task_id: str) -> Call[Task[Any]]:
    # Sent again only if never sent: a repeat could requeue a task that died again since.
    data = yield Request("POST", _task(task_id) + "/requeue", retry="connect")
    return Task.from_dict(data)


def bulk(action: Bulk, filter: Mapping[str, Any], dry_run: bool) -> Call[int]:
    """Checked here by the server's rules first; times go as ISO 8601 text."""
    selection = rules.check_filter(action, filter)
    body: dict[str, Any] = {"dry_run": bool(dry_run)}
    if "status" in filter and filter["status"] is not None:
        body["status"] = sorted(status.value for status in selection.statuses)
    for name in ("type", "queue"):
        if (value := getattr(selection, name)) is not None:
            body[name] = value
    for name in ("created_after", "created_before"):
        if (at := getattr(selection, name)) is not None:
            body[name] = iso(at)
    # A repeat of a cancel or a purge finds its first try's work done; a repeated requeue
    # could requeue tasks that died again since: sent again only if never sent.
    retry: RetryWhen = "connect" if action is Bulk.REQUEUE and not dry_run else "always"
    data = yield Request("POST", f"/tasks/bulk/{action.value}", body=body, retry=retry)
    touched: int = data["touched"]
    return touched


def _task(task_id: str) -> str:
    return f"/tasks/{quote(rules.check_task_id(task_id), safe='')}"


# -- workflows --------------------------------------------------------------------------


def signal(workflow_id: str, name: str, payload: Any) -> Call[None]:
    """Checked here by the server's rules first. Sent again only if never sent: a repeat
    would be a second signal."""
    name = rules.check_signal_name(name)
    rules.check_json(payload, "payload")
    path = f"{_workflow(workflow_id)}/signals/{quote(name, safe='')}"
    yield Request("POST", path, body=payload, retry="connect")


def workflow(workflow_id: str) -> Call[WorkflowState]:
    return workflow_from_dict((yield Request("GET", _workflow(workflow_id))))


def _workflow(workflow_id: str) -> str:
    return f"/workflows/{quote(rules.check_task_id(workflow_id), safe='')}"


def workflow_from_dict(data: Mapping[str, Any]) -> WorkflowState:
    """A workflow as ``GET /workflows/{id}`` sends it, back as a WorkflowState."""
    task = Task.from_dict(data["task"])
    history = [
        HistoryEntry(
            workflow_id=task.id,
            seq=entry["seq"],
            kind=EntryKind(entry["kind"]),
            name=entry.get("name"),
            step_id=entry.get("step_id"),
            wake_at=_epoch(entry.get("wake_at")),
            value=entry.get("value"),
            error=None if entry.get("error") is None else TaskError.from_dict(entry["error"]),
            outcome=None if entry.get("outcome") is None else EntryOutcome(entry["outcome"]),
            recorded_at=_epoch(entry.get("recorded_at")) or 0.0,
            resolved_at=_epoch(entry.get("resolved_at")),
        )
        for entry in data["history"]
    ]
    signals = [
        SignalRecord(
            id=item["id"],
            workflow_id=task.id,
            name=item["name"],
            payload=item.get("payload"),
            sent_at=_epoch(item.get("sent_at")) or 0.0,
            consumed_by=item.get("consumed_by"),
        )
        for item in data["signals"]
    ]
    steps = [Task.from_dict(item) for item in data["steps"]]
    return WorkflowState(task, history, signals, steps)


# -- schedules --------------------------------------------------------------------------


def add_schedule(
    name: str, task_type: TaskHandle[Any, Any] | str, payload: Any, spec: Mapping[str, Any]
) -> Call[Schedule]:
    if isinstance(task_type, TaskHandle):
        payload = task_type.contract.accept(payload)
    rules.check_json(payload, "payload")
    body = {
        "name": name,
        "task_type": rules.task_type_of(rules.AnyTypes(), task_type).name,
        "payload": payload,
        **_spec(spec),
    }
    # A create sent twice would find its own name taken: sent again only if never sent.
    return schedule_from_dict((yield Request("POST", "/schedules", body=body, retry="connect")))


def update_schedule(schedule_id: str, changes: Mapping[str, Any]) -> Call[Schedule]:
    path = _schedule(schedule_id)
    return schedule_from_dict((yield Request("PATCH", path, body=_spec(changes))))


def pause_schedule(schedule_id: str) -> Call[Schedule]:
    return schedule_from_dict((yield Request("POST", _schedule(schedule_id) + "/pause")))


def resume_schedule(schedule_id: str) -> Call[Schedule]:
    return schedule_from_dict((yield Request("POST", _schedule(schedule_id) + "/resume")))


def delete_schedule(schedule_id: str) -> Call[None]:
    """A delete sent again after a lost connection may find its first try done: a 404
    then is success."""
    try:
        yield Request("DELETE", _schedule(schedule_id))
    except Resent as resent:
        if not isinstance(resent.error, LookupError):
            raise resent.error from None


def get_schedule(schedule_id: str) -> Call[Schedule]:
    return schedule_from_dict((yield Request("GET", _schedule(schedule_id))))


def list_schedules() -> Call[list[Schedule]]:
    data = yield Request("GET", "/schedules")
    return [schedule_from_dict(item) for item in data["items"]]


def nodes() -> Call[list[NodeInfo]]:
    data = yield Request("GET", "/nodes")
    return [NodeInfo.from_dict(item) for item in data["items"]]


def run_schedule(schedule_id: str) -> Call[Task[Any]]:
    # Every fire makes a new task: sent again only if never sent.
    path = _schedule(schedule_id) + "/run"
    return Task.from_dict((yield Request("POST", path, retry="connect")))


# -- queues ---------------------------------------------------------------------------


def list_queues() -> Call[list[dict[str, Any]]]:
    data = yield Request("GET", "/queues")
    items: list[dict[str, Any]] = data["items"]
    return items


def pause_queue(name: str) -> Call[dict[str, Any]]:
    queue: dict[str, Any] = yield Request("POST", _queue(name) + "/pause")
    return queue


def resume_queue(name: str) -> Call[dict[str, Any]]:
    queue: dict[str, Any] = yield Request("POST", _queue(name) + "/resume")
    return queue


def _queue(name: str) -> str:
    return f"/queues/{quote(rules.check_text(name, 'queue'), safe='')}"


def _schedule(schedule_id: str) -> str:
    return f"/schedules/{quote(rules.check_schedule_id(schedule_id), safe='')}"


def _spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule's fields as JSON: ``at`` given as a datetime is sent as ISO text."""
    body = dict(spec)
    if isinstance(body.get("at"), datetime | int | float):
        body["at"] = iso(rules.parse_time(body["at"], "at"))
    if isinstance(body.get("task_type"), TaskHandle):
        body["task_type"] = body["task_type"].name
    return body


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """A schedule as the HTTP API sends it (``Schedule.to_dict``), back as a Schedule."""
    created = _epoch(data.get("created_at")) or 0.0
    return Schedule(
        id=data["id"],
        name=data["name"],
        task_type=data["task_type"],
        payload=data.get("payload"),
        queue=data.get("queue"),
        priority=data.get("priority", 0),
        every=data.get("every"),
        cron=data.get("cron"),
        timezone=data.get("timezone"),
        at=_epoch(data.get("at")),
        paused=data.get("paused", False),
        misfire=Misfire(data.get("misfire", Misfire.SKIP)),
        anchor=created,  # not sent; the creation time is the anchor of new schedules
        next_run_at=_epoch(data.get("next_run_at")),
        last_run_at=_epoch(data.get("last_run_at")),
        created_at=created,
        updated_at=_epoch(data.get("updated_at")) or 0.0,
    )


def _epoch(text: str | None) -> float | None:
    return None if text is None else parse_iso(text)
