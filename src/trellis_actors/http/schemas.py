"""Request and response schemas: what ``/openapi.json`` documents and what requests must match.

Request models are strict (no type coercion, no unknown fields) so that the documented schema
is the one enforced. Response models only document: handlers return ``Task.to_dict()`` and
friends directly, and the tests check that those match these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    RootModel,
    WithJsonSchema,
)

from ..lifecycle import TaskStatus
from ..rules import (
    DURATION_PATTERN,
    INCLUDE_PATTERN,
    MAX_ATTEMPTS,
    MAX_CRON_LENGTH,
    MAX_DELAY,
    MAX_DURATION_TEXT,
    MAX_EVENT_ID,
    MAX_EVERY,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PAGE,
    MAX_PAGE_BYTES,
    MAX_PRIORITY,
    MAX_TIME_TEXT,
    MAX_TIMEOUT,
    MAX_ZONE_LENGTH,
    MIN_EVERY,
    MIN_PRIORITY,
    NO_NUL_PATTERN,
    SCHEDULE_NAME_PATTERN,
)
from ..workflows import EntryKind, EntryOutcome

#: Most tasks one ``POST /tasks`` may carry.
MAX_BATCH = 1000

# The bounds come from trellis_actors.rules, which the runtime applies to every request
# (and to every other way in); here they document the API and refuse the obvious early.
# Text rules beyond length (no NUL) are documented here and left to the runtime, whose
# message states them better than a pattern does.
_NO_NUL: dict[str, JsonValue] = {"pattern": NO_NUL_PATTERN}
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=_NO_NUL)]
Queue = Name
Priority = Annotated[int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)]
DateTime = Annotated[
    str, Field(max_length=MAX_TIME_TEXT, json_schema_extra={"format": "date-time"})
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SubmitTask(_Request):
    """One task to submit. ``null`` for an optional field means its default."""

    type: Name = Field(description="A registered task type.")
    # Any, not JsonValue: the body was parsed from JSON, so walking it again would only
    # cost time (both document as "any value").
    payload: Any = Field(None, description="Any JSON value; handed to the handler.")
    queue: Queue | None = Field(None, description="Default: the type's.")
    priority: Priority | None = Field(None, description="Higher runs first; default 0.")
    delay: float | None = Field(None, ge=0, le=MAX_DELAY, description="Seconds from now.")
    run_at: DateTime | None = Field(
        None,
        description="ISO 8601 date-time (UTC when no offset is given), from year 1 to 9999; "
        "not with delay.",
    )
    max_attempts: int | None = Field(
        None, ge=1, le=MAX_ATTEMPTS, description="Default: the type's."
    )
    timeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT, description="Seconds per attempt; default: the type's."
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        json_schema_extra=_NO_NUL,
        description="A repeat with the same key returns the existing task (200).",
    )


SubmitBatch = Annotated[list[SubmitTask], Field(min_length=1, max_length=MAX_BATCH)]


class SubmitBody(RootModel[SubmitTask | SubmitBatch]):
    """One task, or an array of 1 to 1,000 tasks submitted together (all or nothing)."""


class ListQuery(BaseModel):
    """Filters and paging for ``GET /tasks``."""

    model_config = ConfigDict(extra="ignore")

    status: TaskStatus | None = None
    type: Name | None = None
    queue: Queue | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(
        None, max_length=MAX_ID_LENGTH, description="A page's next_cursor (a task id)."
    )
    include: str | None = Field(
        None,
        max_length=MAX_NAME_LENGTH,
        pattern=INCLUDE_PATTERN,
        description="Comma-separated fields to add to each task's summary: payload, result "
        "(e.g. include=payload,result). Without them a listing leaves both out. A page "
        "stops before its body would pass the server's byte cap "
        f"({MAX_PAGE_BYTES // (1024 * 1024)} MiB by default); its next_cursor then points "
        "at the rest.",
    )
    id_prefix: str | None = Field(
        None, max_length=36, pattern=r"^[0-9a-f-]+$", description="The start of a task id."
    )
    idempotency_key: str | None = Field(None, max_length=MAX_KEY_LENGTH, pattern=NO_NUL_PATTERN)
    schedule_id: str | None = Field(
        None, max_length=MAX_ID_LENGTH, pattern=NO_NUL_PATTERN, description="Tasks it fired."
    )
    created_after: float | None = Field(
        None, allow_inf_nan=False, description="Created at or after (seconds since the epoch)."
    )
    created_before: float | None = Field(
        None, allow_inf_nan=False, description="Created before (seconds since the epoch)."
    )


class EventsQuery(BaseModel):
    """Filters for ``GET /events``: only one task's transitions, one workflow's (its own
    and its steps'), or one type's; and where to resume."""

    model_config = ConfigDict(extra="ignore")

    task_id: str | None = Field(None, max_length=MAX_ID_LENGTH, pattern=NO_NUL_PATTERN)
    workflow_id: str | None = Field(
        None,
        max_length=MAX_ID_LENGTH,
        pattern=NO_NUL_PATTERN,
        description="The workflow's own transitions and its steps'.",
    )
    type: str | None = Field(None, max_length=MAX_NAME_LENGTH, pattern=NO_NUL_PATTERN)
    after: int | None = Field(
        None,
        ge=0,
        le=MAX_EVENT_ID,
        description="Resume after this event id (as the Last-Event-ID header does, which "
        "wins when both are given); 0 replays every event kept.",
    )


# -- responses ------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: validation_error, not_found, ...")
    message: str
    field: str | None = Field(None, description="The offending field, when there is one.")
    scope: str | None = Field(
        None, description="On a 401 or 403: the scope the request needed (read, submit, ...)."
    )


class ErrorOut(BaseModel):
    """An error: a 4xx for anything the client can fix."""

    error: ErrorDetail


class TaskErrorOut(BaseModel):
    type: str
    message: str
    traceback: str | None


class ProgressOut(BaseModel):
    fraction: float
    message: str | None


class LeaseOut(BaseModel):
    owner: str
    expires_at: str | None


class TaskOut(BaseModel):
    """A task: status, attempt, timestamps (ISO 8601, UTC), result, error and progress."""

    id: str
    type: str
    queue: str
    payload: JsonValue
    status: TaskStatus
    priority: int
    attempt: int
    max_attempts: int
    run_at: str | None
    timeout: float | None
    idempotency_key: str | None
    created_at: str | None
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None
    result: JsonValue
    error: TaskErrorOut | None
    progress: ProgressOut | None
    lease: LeaseOut | None
    schedule_id: str | None
    node: str | None = Field(description="The node (its id) that ran the latest attempt.")
    worker: str | None = Field(description="The worker that ran the latest attempt.")
    parent_id: str | None = Field(
        default=None, description="The workflow this task is a step of (null: none)."
    )


class SubmittedOut(RootModel[TaskOut | list[TaskOut]]):
    """The stored task, or the list of stored tasks for a batch."""


class TaskSummaryOut(TaskOut):
    """A task in a listing: ``payload`` and ``result`` only when ``include`` names them."""

    payload: JsonValue = Field(None, description="Only with include=payload.")
    result: JsonValue = Field(None, description="Only with include=result.")


class TaskPage(BaseModel):
    """One page of tasks, newest first; pass ``next_cursor`` back as ``cursor``. A page
    may hold fewer than ``limit`` tasks (it stops before its body passes the byte cap)
    and still have a ``next_cursor``."""

    items: list[TaskSummaryOut]
    next_cursor: str | None


class EventOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    task_id: str
    from_: TaskStatus | None = Field(alias="from")
    to: TaskStatus
    at: str | None
    attempt: int
    detail: str | None
    node: str | None = Field(description="On moves to and from running: the attempt's node.")
    worker: str | None = Field(description="On moves to and from running: its worker.")


class EventList(BaseModel):
    """A task's history, oldest first."""

    items: list[EventOut]


class TransitionOut(BaseModel):
    """One ``data:`` line of ``GET /events``: the event and the task after it."""

    event: EventOut
    task: TaskOut


class QueueOut(BaseModel):
    name: str
    depth: int = Field(
        description="Tasks waiting: pending, queued, retrying, or workflows waiting."
    )
    counts: dict[str, int] = Field(description="Tasks per status (every status listed).")
    paused: bool = Field(description="Paused: no node claims its tasks.")
    paused_at: str | None = Field(description="When it was paused (ISO 8601), if it is.")


class QueueList(BaseModel):
    """Every queue that holds tasks or was paused."""

    items: list[QueueOut]


class WorkerOut(BaseModel):
    name: str
    node: str = Field(description="The node (its id) the worker belongs to.")
    state: str = Field(
        description="The worker actor's state (running, backing-off, ...) on the node that "
        "answers; a worker of another node shows that node's state (up or draining), as of "
        "its last heartbeat."
    )
    current_task: str | None
    current_type: str | None
    tasks_done: int
    restarts: int | None = Field(description="Restarts (known on the node that answers only).")


class WorkerList(BaseModel):
    """The workers of every node not lost: this node's live, the others' as of their last
    heartbeat."""

    items: list[WorkerOut]


class WorkerActivityOut(BaseModel):
    name: str
    current_task: str | None
    current_type: str | None
    tasks_done: int


class NodeOut(BaseModel):
    """A node of the cluster, as its last heartbeat said (times ISO 8601, UTC)."""

    id: str = Field(description="The node's id: its lease owner, what tasks' node names.")
    state: Literal["up", "draining", "lost"] = Field(
        description="lost: not seen for three of its heartbeats (its row goes after sixty)."
    )
    host: str
    pid: int
    version: str
    started_at: str | None
    seen_at: str | None
    heartbeat: float = Field(description="Seconds between its heartbeats.")
    workers: int
    busy: int
    processes: int
    queues: list[str] | None = Field(description="The queues it works; null: every queue.")
    draining: bool
    activity: list[WorkerActivityOut]


class NodeList(BaseModel):
    """Every node in the registry, by id."""

    items: list[NodeOut]


class BackoffOut(BaseModel):
    initial: float
    maximum: float
    multiplier: float
    jitter: float


class TaskTypeOut(BaseModel):
    name: str
    queue: str
    max_attempts: int
    timeout: float | None
    max_duration: float | None = Field(
        description="Longest an attempt may run, in seconds; caps any timeout. null: no cap"
    )
    concurrency: int | None
    rate_limit: str | None = Field(None, description="At most N starts per s, m or h.")
    dead_letter: bool
    backoff: BackoffOut
    retry_on: list[str]
    description: str | None
    executor: str = Field(description="async, thread or process")
    payload_schema: dict[str, Any] | None = Field(
        description="The JSON Schema a payload must meet (its handler's payload "
        "annotation); null: any JSON"
    )
    result_schema: dict[str, Any] | None = Field(
        description="The JSON Schema of the result (its handler's return annotation); "
        "null: any JSON"
    )


class TaskTypeList(BaseModel):
    """The registered task types."""

    items: list[TaskTypeOut]


class MailboxOut(BaseModel):
    length: int
    capacity: float | None = Field(description="null: unbounded")
    sent: int
    handled: int
    blocked_seconds: float


class ActorOut(BaseModel):
    """An actor in the supervision tree, with its children."""

    name: str
    kind: str
    state: str
    restarts: int
    last_error: str | None
    last_error_at: float | None
    mailbox: MailboxOut | None
    uptime: float | None
    children: list[ActorOut]
    strategy: str | None
    next_restart_in: float | None
    details: dict[str, Any] | None = Field(
        default=None,
        description=(
            "What the actor tells of itself: a process pool's processes, busy and restarts; "
            "a worker's abandoned threads."
        ),
    )


class HealthOut(BaseModel):
    """The process is alive."""

    status: str


class ReadyOut(BaseModel):
    """Whether this node is ready to take work, and why not."""

    ready: bool
    store: bool = Field(description="The store answered a ping.")
    supervisor: str = Field(description="The root supervisor's state.")
    draining: bool
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="The App's readiness checks: ok, or why not (failed, timed out, "
        "pending, or the error).",
    )


# -- schedules ------------------------------------------------------------------------

#: A schedule's name, as ``scheduling.define`` checks it.
SCHEDULE_NAME = SCHEDULE_NAME_PATTERN


def _every(value: object) -> float | str:
    """Seconds (a number) or a duration text, as given: the runtime reads it (and its
    bounds) with the rules of every other way in."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be seconds (a number) or a duration like '30s', '5m', '2h'")
    return value


Every = Annotated[
    float | str,
    PlainValidator(_every),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": MIN_EVERY, "maximum": MAX_EVERY},
                {
                    "type": "string",
                    "pattern": DURATION_PATTERN,
                    "maxLength": MAX_DURATION_TEXT,
                },
            ]
        }
    ),
]
Cron = Annotated[str, Field(min_length=1, max_length=MAX_CRON_LENGTH)]
TimeZone = Annotated[str, Field(min_length=1, max_length=MAX_ZONE_LENGTH)]
MisfirePolicy = Literal["skip", "run_once"]


def _name(default: Any = ...) -> Any:
    return Field(
        default,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        json_schema_extra={"pattern": SCHEDULE_NAME},  # define checks it, and says it better
        description="Unique: 1-128 letters, digits, '_', '.', ':' or '-'.",
    )


def _task_type(default: Any = ...) -> Any:
    return Field(
        default,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="The task type each fire submits.",
    )


def _left_out(description: str) -> Any:
    """A field of :class:`ScheduleChanges` that is not nullable, yet ``None`` when left out:
    handlers read only the fields in ``model_fields_set``."""
    return Field(None, description=description)


def _no_defaults(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        field.pop("default", None)  # a field left out is left unchanged: there is no default


class ScheduleIn(_Request):
    """A schedule to create: exactly one of ``every``, ``cron`` and ``at``. ``null`` for an
    optional field means its default."""

    name: str = _name()
    task_type: str = _task_type()
    payload: Any = Field(None, description="Any JSON value; given to every task it creates.")
    every: Every | None = Field(
        None, description="An interval: seconds (at least 1), or a duration like 30s, 5m, 2h, 1d."
    )
    cron: Cron | None = Field(
        None, description="Five cron fields (minute hour day month weekday), e.g. 0 2 * * *."
    )
    timezone: TimeZone | None = Field(
        None, description="The IANA zone the cron fields are read in; default UTC. Cron only."
    )
    at: DateTime | None = Field(
        None, description="Once, at this ISO 8601 date-time (UTC when no offset is given)."
    )
    queue: Queue | None = Field(None, description="Queue of the tasks; default: the type's.")
    priority: Priority | None = Field(None, description="Priority of the tasks; default 0.")
    misfire: MisfirePolicy | None = Field(
        None, description="Slots missed during downtime: skip (default) or run_once."
    )
    paused: bool | None = Field(None, description="Create it paused; default false.")


class ScheduleChanges(_Request):
    """Changes to a schedule: only the fields given change. A new kind of spec replaces the
    old one (``cron`` clears ``every``); ``null`` clears a nullable field."""

    model_config = ConfigDict(json_schema_extra=_no_defaults)

    name: str = _name(None)  # None: left out (see _left_out)
    task_type: str = _task_type(None)
    payload: Any = Field(None, description="Any JSON value; given to every task it creates.")
    every: Every | None = Field(None, description="An interval: seconds, or 30s, 5m, 2h, 1d.")
    cron: Cron | None = Field(None, description="Five cron fields.")
    timezone: TimeZone | None = Field(None, description="IANA zone of the cron fields.")
    at: DateTime | None = Field(None, description="Once, at this ISO 8601 date-time.")
    queue: Queue | None = Field(None, description="null: the type's queue.")
    priority: Priority = _left_out("Priority of the tasks it creates.")
    misfire: MisfirePolicy = _left_out("skip or run_once.")
    paused: bool = _left_out("Pause or resume it.")


class ScheduleOut(BaseModel):
    """A schedule: its spec, what each fire creates, and its slots (ISO 8601, UTC)."""

    id: str
    name: str
    task_type: str
    payload: JsonValue
    queue: str | None = Field(description="null: the task type's queue.")
    priority: int
    every: float | None = Field(description="Seconds between slots.")
    cron: str | None
    timezone: str | None
    at: str | None
    spec: str = Field(description="For people: 'every 30s', 'cron 0 2 * * * (Europe/Paris)'.")
    paused: bool
    misfire: MisfirePolicy
    next_run_at: str | None = Field(description="The next slot; null once a one-shot fired.")
    last_run_at: str | None = Field(description="The last slot fired.")
    created_at: str | None
    updated_at: str | None


class ScheduleList(BaseModel):
    """Every schedule, ordered by name."""

    items: list[ScheduleOut]


# -- long-poll wait -------------------------------------------------------------------

#: Longest a ``GET /tasks/{id}/wait`` holds the request, in seconds.
MAX_WAIT = 30.0


class WaitQuery(BaseModel):
    """How long ``GET /tasks/{id}/wait`` may hold the request."""

    model_config = ConfigDict(extra="ignore")

    timeout: float = Field(
        MAX_WAIT,
        ge=0,
        allow_inf_nan=False,
        description=f"Seconds to wait for the task to end; at most {MAX_WAIT:g} (longer "
        "values are taken as that).",
    )


# -- bulk operations ------------------------------------------------------------------

StatusName = Annotated[
    str,
    Field(max_length=MAX_NAME_LENGTH, json_schema_extra={"enum": [s.value for s in TaskStatus]}),
]


class BulkFilter(_Request):
    """Which tasks a bulk cancel, requeue or purge touches: at least one field. Each
    operation touches only the statuses it can act on (cancel: pending, queued, retrying,
    running, waiting; requeue: dead; purge: completed, failed, dead, cancelled), all of them when
    ``status`` is not given."""

    status: StatusName | list[StatusName] | None = Field(
        None, description="A status, or a list of them."
    )
    type: Name | None = Field(None, description="Only tasks of this type.")
    queue: Queue | None = Field(None, description="Only tasks in this queue.")
    created_after: DateTime | None = Field(
        None, description="Only tasks created at or after this ISO 8601 time (UTC if naive)."
    )
    created_before: DateTime | None = Field(
        None, description="Only tasks created before this ISO 8601 time (UTC if naive)."
    )
    dry_run: bool = Field(False, description="Count the tasks, touch none.")


class BulkOut(BaseModel):
    touched: int = Field(description="How many tasks were (with dry_run: would be) touched.")
    dry_run: bool


# -- workflows ------------------------------------------------------------------------


class SignalBody(RootModel[JsonValue]):
    """The signal's payload: any JSON value (an empty body sends ``null``)."""


class SignalOut(BaseModel):
    """A signal kept for a workflow: received by its next ``wf.wait_signal(name)``."""

    workflow_id: str
    name: str
    payload: JsonValue
    sent_at: str | None


class HistoryEntryOut(BaseModel):
    """One thing a workflow asked for, at its place (``seq``, from 1) in its history."""

    seq: int
    kind: EntryKind
    name: str | None = Field(description="A step's task type, a signal's name.")
    step_id: str | None = Field(description="A step's task.")
    wake_at: str | None = Field(description="A sleep's wake time, a signal wait's deadline.")
    value: JsonValue = Field(
        description="A step's result, a received signal's payload, a recorded value."
    )
    error: TaskErrorOut | None = Field(description="A failed step's error.")
    outcome: EntryOutcome | None = Field(
        description="How it was resolved; null while the workflow waits for it."
    )
    recorded_at: str | None
    resolved_at: str | None


class WorkflowSignalOut(BaseModel):
    id: int
    name: str
    payload: JsonValue
    sent_at: str | None
    consumed_by: int | None = Field(
        description="The history entry (seq) that received it; null while it waits."
    )


class WorkflowOut(BaseModel):
    """A workflow: its task, its history in order, the signals sent to it (in the order
    sent) and its steps' tasks (oldest first)."""

    task: TaskOut
    history: list[HistoryEntryOut]
    signals: list[WorkflowSignalOut]
    steps: list[TaskOut]
