"""Request and response schemas: what ``/openapi.json`` documents and what requests must match.

Request models are strict (no type coercion, no unknown fields) so that the documented schema
is the one enforced. Response models only document: handlers return ``Task.to_dict()`` and
friends directly, and the tests check that those match these models.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, field_validator

from .._time import iso, parse_iso
from ..lifecycle import TaskStatus

#: Most tasks one ``POST /tasks`` may carry.
MAX_BATCH = 1000
#: Bounds that keep every accepted value storable (64-bit columns, datetimes) by every store.
MAX_INT32 = 2**31 - 1
MAX_DELAY = 10 * 365 * 24 * 3600.0
MAX_TIMEOUT = 365 * 24 * 3600.0
_NO_NUL = r"^[^\x00]*$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SubmitTask(_Request):
    """One task to submit. ``null`` for an optional field means its default."""

    type: str = Field(min_length=1, max_length=128, description="A registered task type.")
    # Any, not JsonValue: the body was parsed from JSON, so walking it again would only
    # cost time (both document as "any value").
    payload: Any = Field(None, description="Any JSON value; handed to the handler.")
    queue: str | None = Field(
        None, min_length=1, max_length=128, pattern=_NO_NUL, description="Default: the type's."
    )
    priority: int | None = Field(
        None, ge=-MAX_INT32, le=MAX_INT32, description="Higher runs first; default 0."
    )
    delay: float | None = Field(None, ge=0, le=MAX_DELAY, description="Seconds from now.")
    run_at: str | None = Field(
        None,
        max_length=64,
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 date-time (UTC when no offset is given); not with delay.",
    )
    max_attempts: int | None = Field(None, ge=1, le=1000, description="Default: the type's.")
    timeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT, description="Seconds per attempt; default: the type's."
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=_NO_NUL,
        description="A repeat with the same key returns the existing task (200).",
    )

    @field_validator("run_at")
    @classmethod
    def _date_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                iso(parse_iso(value))  # both ways: a time that cannot be shown is refused
            except (ValueError, OverflowError, OSError):
                raise ValueError(
                    "must be an ISO 8601 date-time, such as 2030-01-01T12:00:00Z"
                ) from None
        return value


SubmitBatch = Annotated[list[SubmitTask], Field(min_length=1, max_length=MAX_BATCH)]


class SubmitBody(RootModel[SubmitTask | SubmitBatch]):
    """One task, or an array of 1 to 1,000 tasks submitted together (all or nothing)."""


class ListQuery(BaseModel):
    """Filters and paging for ``GET /tasks``."""

    model_config = ConfigDict(extra="ignore")

    status: TaskStatus | None = None
    type: str | None = Field(None, max_length=128)
    queue: str | None = Field(None, max_length=128)
    limit: int = Field(50, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=128, description="A page's next_cursor.")


class EventsQuery(BaseModel):
    """Filters for ``GET /events``: only one task's transitions, or one type's."""

    model_config = ConfigDict(extra="ignore")

    task_id: str | None = Field(None, max_length=128)
    type: str | None = Field(None, max_length=128)


# -- responses ------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: validation_error, not_found, ...")
    message: str
    field: str | None = Field(None, description="The offending field, when there is one.")


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


class SubmittedOut(RootModel[TaskOut | list[TaskOut]]):
    """The stored task, or the list of stored tasks for a batch."""


class TaskPage(BaseModel):
    """One page of tasks, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[TaskOut]
    next_cursor: str | None


class EventOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    task_id: str
    from_: TaskStatus | None = Field(alias="from")
    to: TaskStatus
    at: str | None
    attempt: int
    detail: str | None


class EventList(BaseModel):
    """A task's history, oldest first."""

    items: list[EventOut]


class TransitionOut(BaseModel):
    """One ``data:`` line of ``GET /events``: the event and the task after it."""

    event: EventOut
    task: TaskOut


class QueueOut(BaseModel):
    name: str
    depth: int = Field(description="Tasks waiting: pending, queued or retrying.")
    counts: dict[str, int] = Field(description="Tasks per status (every status listed).")


class QueueList(BaseModel):
    """Every queue that holds tasks."""

    items: list[QueueOut]


class WorkerOut(BaseModel):
    name: str
    state: str = Field(description="The worker actor's state: running, backing-off, ...")
    current_task: str | None
    current_type: str | None
    tasks_done: int
    restarts: int


class WorkerList(BaseModel):
    """The workers of this node."""

    items: list[WorkerOut]


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
    concurrency: int | None
    dead_letter: bool
    backoff: BackoffOut
    retry_on: list[str]
    description: str | None


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


class HealthOut(BaseModel):
    """The process is alive."""

    status: str


class ReadyOut(BaseModel):
    """Whether this node is ready to take work, and why not."""

    ready: bool
    store: bool = Field(description="The store answered a ping.")
    supervisor: str = Field(description="The root supervisor's state.")
    draining: bool
