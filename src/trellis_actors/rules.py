"""Input rules: every rule a new task, a schedule, a listing or an id must meet, in one place.

Every way in meets these rules — the HTTP API (whose schemas import the bounds below), the
UI's forms, the CLI, ``rt.submit``/``submit_many``, schedule definitions and the scheduler's
fires — so a value is refused the same way wherever it comes from, and never reaches a
store that cannot hold it. The bounds are what every store holds: PostgreSQL ``integer``
(int4), ``double precision``, ``text`` and ``jsonb`` (no ``\\u0000``, no lone surrogate),
SQLite's 64-bit integers, and Python datetimes (years 1 to 9999, in any zone up to ±14 h).

Each check raises :class:`ValidationError` naming the field, with a message that states
the rule; an id that cannot name anything raises the not-found error of its kind.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic_core
from croniter import CroniterError, croniter

from ._time import parse_iso
from .contracts import ANY_JSON, Contract, TaskDefaults, TaskHandle
from .decisions import BULK_STATUSES, Bulk, Selection
from .errors import ScheduleNotFound, TaskNotFound, ValidationError
from .lifecycle import NewTask, TaskStatus

#: Longest task type, queue or schedule name, and longest list filter.
MAX_NAME_LENGTH = 128
#: Longest idempotency key.
MAX_KEY_LENGTH = 255
#: Longest task or schedule id (theirs are 36-character UUIDs); longer ones name nothing.
MAX_ID_LENGTH = 128
#: Priorities fit PostgreSQL's ``integer`` column, the narrowest of the stores.
MAX_PRIORITY = 2**31 - 1
MIN_PRIORITY = -MAX_PRIORITY
MAX_ATTEMPTS = 1000
#: Longest ``timeout`` of an attempt, in seconds: a year.
MAX_TIMEOUT = 365 * 86400.0
#: Longest ``delay``, in seconds: ten years (longer ones are surely a unit mistake).
MAX_DELAY = 10 * 365 * 86400.0
#: Interval of an ``every`` schedule, in seconds: one second to ten years.
MIN_EVERY = 1.0
MAX_EVERY = MAX_DELAY
#: Most containers (arrays, objects) nested in one another in a payload or result.
MAX_JSON_DEPTH = 64
#: Largest payload or result, as compact UTF-8 JSON.
MAX_JSON_BYTES = 1024 * 1024
#: Longest integer in a payload or result (Python prints at most 4,300 digits by default).
MAX_JSON_INT_DIGITS = 4000
#: Most tasks a listing returns at once.
MAX_PAGE = 1000
#: Most bytes of payloads and results a page of a listing carries by default (a page
#: stops before it would pass them, and its cursor points at the rest).
MAX_PAGE_BYTES = 8 * 1024 * 1024
#: What a listing may add to each task's summary (``include``): none by default.
TASK_DATA = frozenset({"payload", "result"})
INCLUDE_PATTERN = r"^\s*(payload|result)?\s*(,\s*(payload|result)\s*)*$"
#: Longest ISO 8601 text, cron expression and time zone name.
MAX_TIME_TEXT = 64
MAX_CRON_LENGTH = 256
MAX_ZONE_LENGTH = 64
#: Earliest and latest time a task may run or a schedule fire: a day inside the range of
#: ``datetime``, so that the time reads as a date in every zone (offsets up to ±14 h).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
EARLIEST_TEXT = "0001-01-02T00:00:00Z"
LATEST_TEXT = "9999-12-30T00:00:00Z"
#: A schedule's name: letters, digits and ``_ . : -``.
SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
#: An ``every`` written as a duration: ``90``, ``1500ms``, ``30s``, ``5m``, ``2h``, ``1d``.
DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$"
MAX_DURATION_TEXT = 32
#: Text without NUL, as a JSON Schema pattern (the HTTP schemas document the rule with it).
NO_NUL_PATTERN = r"^[^\x00]*$"

#: Fields a submission may carry, besides ``type`` and ``payload``.
SUBMIT_FIELDS = frozenset(
    {"queue", "priority", "delay", "run_at", "max_attempts", "timeout", "idempotency_key"}
)


class SubmitOptions(TypedDict, total=False):
    """The options of a submission, whichever way it is made (``rt.submit``, the
    clients, ``trellis_actors.postgres.enqueue``, ...): typed keyword arguments."""

    #: The queue to run on; the task type's queue by default.
    queue: str
    #: Higher runs first (within ±2^31-1); 0 by default.
    priority: int
    #: Seconds from now until it is due (at most ten years); give this or ``run_at``.
    delay: float
    #: When it is due: a ``datetime`` (naive means UTC), ISO 8601 text or epoch seconds.
    run_at: datetime | str | float
    #: Attempts before it fails for good (1..1000); the type's by default.
    max_attempts: int
    #: Seconds an attempt may run (at most a year); the type's by default.
    timeout: float
    #: A repeat with the same key returns the task already made instead of a new one.
    idempotency_key: str


class FilterFields(TypedDict, total=False):
    """The filter of a bulk cancel, requeue or purge (:func:`check_filter`)."""

    #: One status or a list of them, among those the operation touches (all by default).
    status: TaskStatus | str | list[TaskStatus | str]
    #: Only tasks of this type.
    type: str
    #: Only tasks in this queue.
    queue: str
    #: Only tasks created at or after this time (a ``datetime``, ISO 8601 or epoch seconds).
    created_after: datetime | str | float
    #: Only tasks created before this time.
    created_before: datetime | str | float


_SCHEDULE_NAME = re.compile(SCHEDULE_NAME_PATTERN)
_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: What no store can keep in text: NUL, and surrogates (not Unicode on their own).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DURATION = re.compile(DURATION_PATTERN)
_BIG_TIME = 2.0**62  # epoch seconds past any time in range, and within a float's
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


# -- values -------------------------------------------------------------------------------


def check_text(value: Any, field: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A non-empty string of at most ``max_length`` characters, without NUL or a lone
    surrogate (PostgreSQL's ``text`` holds neither)."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise ValidationError(
            f"{field} must be a non-empty string of at most {max_length} characters",
            field=field,
        )
    if not _storable(value):
        raise ValidationError(f"{field}: {_bad_text(value)}", field=field)
    return value


def check_int(value: Any, field: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a bool), within ``low..high`` when given."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field} must be an integer", field=field)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValidationError(f"{field} must be an integer from {low} to {high}", field=field)
    return value


def check_number(value: Any, field: str) -> float:
    """A finite number (not a bool), as a float."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
    except OverflowError:  # an integer too large for a float
        pass
    raise ValidationError(f"{field} must be a finite number", field=field)


def check_priority(value: Any, field: str = "priority") -> int:
    return check_int(value, field, MIN_PRIORITY, MAX_PRIORITY)


# -- times --------------------------------------------------------------------------------


def check_time(at: float, field: str) -> float:
    """``at`` (seconds since the epoch) between :data:`EARLIEST` and :data:`LATEST`."""
    if not EARLIEST <= at <= LATEST:  # NaN fails this too
        raise ValidationError(
            f"{field} must be between {EARLIEST_TEXT} and {LATEST_TEXT}", field=field
        )
    return at


def parse_time(value: Any, field: str) -> float:
    """Seconds since the epoch from ISO 8601 text (UTC when it has no offset), a
    ``datetime`` (naive means UTC) or a number of seconds; within the time range."""
    at: float | None = None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            at = float(value) if -_BIG_TIME < value < _BIG_TIME else math.inf
        elif isinstance(value, datetime):
            at = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        elif isinstance(value, str) and len(value) <= MAX_TIME_TEXT:
            at = parse_iso(value)
    except Exception:  # ValueError, OverflowError; or anything a caller's tzinfo raises
        pass
    if at is None:
        raise ValidationError(
            f"{field} must be an ISO 8601 date-time, such as 2030-01-01T12:00:00Z", field=field
        )
    return check_time(at, field)


def resolve_run_at(delay: Any, run_at: Any, now: float) -> float | None:
    """When a new task is due: ``now + delay``, or ``run_at``; None for at once."""
    if delay is not None and run_at is not None:
        raise ValidationError("give delay or run_at, not both", field="delay")
    if delay is not None:
        seconds = check_number(delay, "delay")
        if not 0 <= seconds <= MAX_DELAY:
            raise ValidationError(
                f"delay must be >= 0 seconds and at most {MAX_DELAY:.0f} (ten years)",
                field="delay",
            )
        if not seconds:
            return None
        if now + seconds > LATEST:
            raise ValidationError(f"delay must end before {LATEST_TEXT}", field="delay")
        return now + seconds
    return None if run_at is None else parse_time(run_at, "run_at")


# -- JSON ---------------------------------------------------------------------------------


_BIG_INT = 10**MAX_JSON_INT_DIGITS
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_TOO_DEEP = f"arrays and objects may nest at most {MAX_JSON_DEPTH} levels deep"


class _Refused(Exception):
    """Why a JSON value was refused, and where (filled in on the way out of the walk)."""

    def __init__(self, problem: str, *, located: bool = True) -> None:
        super().__init__(problem)
        self.problem = problem
        self.located = located  # whether to say where (not for a depth: the path is long)
        self.path: list[str] = []


#: JSON's types as Python gives them; subclasses (a StrEnum, say) count as their base.
_JSON_TYPES = frozenset({str, int, float, bool, type(None), dict, list, tuple})
_JSON_BASES = (str, bool, int, float, dict, list, tuple)


def _storable(text: str) -> bool:
    return "\x00" not in text if text.isascii() else _UNSTORABLE.search(text) is None


def _walk(value: Any, depth: int) -> int:
    """Check ``value``; returns a bound on the length of its compact JSON (in UTF-8 bytes:
    no character takes more than six, as an escape)."""
    # Called once per value of every payload: dispatch on the exact type first.
    kind: type = type(value)
    if kind not in _JSON_TYPES:
        kind = next((base for base in _JSON_BASES if isinstance(value, base)), kind)
        if kind not in _JSON_TYPES:
            raise _Refused(f"{type(value).__name__} is not a JSON type")
    if kind is str:
        if not _storable(value):
            raise _Refused(_bad_text(value))
        return 6 * len(value) + 2
    if kind is int:
        if not -_BIG_INT < value < _BIG_INT:
            raise _Refused(f"integers may have at most {MAX_JSON_INT_DIGITS} digits")
        digits: int = value.bit_length() // 3 + 2
        return digits
    if kind is float:
        if not math.isfinite(value):
            raise _Refused(f"numbers must be finite, not {value!r}")
        return 24
    if kind is dict:
        if depth >= MAX_JSON_DEPTH:
            raise _Refused(_TOO_DEEP, located=False)
        size = 2
        for key, item in value.items():
            try:
                if not isinstance(key, str):
                    raise _Refused(f"object keys must be strings, not {_shown(key)}")
                if not _storable(key):
                    raise _Refused(_bad_text(key, "object keys"))
                size += 6 * len(key) + 4 + _walk(item, depth + 1)
            except _Refused as refused:
                refused.path.append(f"[{_shown(key)}]")
                raise
        return size
    if kind is list or kind is tuple:
        if depth >= MAX_JSON_DEPTH:
            raise _Refused(_TOO_DEEP, located=False)
        size = 2
        for index, item in enumerate(value):
            try:
                size += _walk(item, depth + 1) + 1
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise
        return size
    return 5  # true, false, null


def _bad_text(text: str, what: str = "strings") -> str:
    if "\x00" in text:
        return f"{what} must not contain NUL (\\u0000)"
    return f"{what} must be valid Unicode (no lone surrogates)"


def check_json(value: Any, field: str) -> None:
    """``value`` is JSON every store keeps as given: objects with string keys, arrays,
    strings without NUL or lone surrogates, finite numbers, true, false, null; nested at
    most :data:`MAX_JSON_DEPTH` deep and at most :data:`MAX_JSON_BYTES` as compact JSON.

    For payloads, results and progress messages alike.
    """
    if value is None:
        return
    try:
        bound = _walk(value, 0)
    except _Refused as refused:
        located = refused.path and refused.located
        where = f" (at {field}{''.join(reversed(refused.path))})" if located else ""
        raise ValidationError(
            f"{field} must be JSON-serialisable: {refused.problem}{where}", field=field
        ) from None
    if bound > MAX_JSON_BYTES and len(_COMPACT.encode(value).encode()) > MAX_JSON_BYTES:
        raise ValidationError(
            f"{field} must be at most {MAX_JSON_BYTES} bytes as JSON", field=field
        )


def parse_json(text: str, field: str) -> Any:
    """The JSON value in ``text`` (a form field, a command-line argument), checked with
    :func:`check_json`."""
    try:  # NaN and Infinity are read, to be refused by check_json, which says why
        value = pydantic_core.from_json(text, allow_inf_nan=True)
    except ValueError as exc:
        problem = f"valid JSON: {exc}"
        if "recursion limit" in str(exc):  # the parser's limit, well past MAX_JSON_DEPTH
            problem = f"JSON-serialisable: {_TOO_DEEP}"
        raise ValidationError(f"{field} must be {problem}", field=field) from None
    check_json(value, field)
    return value


# -- tasks --------------------------------------------------------------------------------


class TaskTypes(Protocol):
    """Where task types are looked up by name (an ``App``); raises UnknownTaskType."""

    def get(self, name: str) -> TaskDefaults: ...


class AnyType:
    """The defaults of a type known only by name, where no ``App`` is at hand (a producer
    that enqueues by name): the ``default`` queue, 3 attempts, any JSON payload."""

    queue = "default"
    max_attempts = 3
    dead_letter = True
    max_duration: float | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    contract: Contract = ANY_JSON


class AnyTypes:
    """A :class:`TaskTypes` that takes every name (see :class:`AnyType`)."""

    def get(self, name: str) -> TaskDefaults:
        return AnyType(name)


def task_type_of(app: TaskTypes, type: str | TaskHandle[Any, Any]) -> TaskDefaults:
    """The task type a submission names: a handle's own, or ``app``'s by that name."""
    if isinstance(type, TaskHandle):
        return type.task_type
    return app.get(check_text(type, "type"))


def new_task(app: TaskTypes, type: Any, payload: Any, now: float, /, **fields: Any) -> NewTask:
    """Check one submission and resolve its defaults against ``app``'s task types (or a
    handle's own); ``now`` is when a ``delay`` starts. The payload is checked against the
    type's contract and stored as its JSON form. Raises ValidationError (or
    UnknownTaskType). (The first four are positional only: any name a caller's options
    hold, ``now`` or ``type`` say, is a field, refused as unknown.)"""
    unknown = fields.keys() - SUBMIT_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(f"unknown field {name!r}", field=name)
    task_type = task_type_of(app, type)
    contract = task_type.contract
    if contract.payload is not None:
        payload = contract.accept(payload)
    check_json(payload, "payload")
    queue = fields.get("queue")
    queue = task_type.queue if queue is None else check_text(queue, "queue")
    max_attempts = fields.get("max_attempts")
    if max_attempts is None:
        max_attempts = task_type.max_attempts
    else:
        max_attempts = check_int(max_attempts, "max_attempts", 1, MAX_ATTEMPTS)
    timeout = fields.get("timeout")
    if timeout is not None and not 0 < (timeout := check_number(timeout, "timeout")) <= MAX_TIMEOUT:
        raise ValidationError(
            f"timeout must be > 0 seconds and at most {MAX_TIMEOUT:.0f} (a year)", field="timeout"
        )
    longest = task_type.max_duration
    if timeout is not None and longest is not None and timeout > longest:
        raise ValidationError(
            f"timeout must be at most {longest:g} seconds: the max_duration of "
            f"{task_type.name!r} tasks",
            field="timeout",
        )
    key = fields.get("idempotency_key")
    priority = fields.get("priority")
    return NewTask(
        type=task_type.name,
        payload=payload,
        queue=queue,
        priority=0 if priority is None else check_priority(priority),
        run_at=resolve_run_at(fields.get("delay"), fields.get("run_at"), now),
        max_attempts=max_attempts,
        timeout=timeout,
        idempotency_key=None if key is None else check_text(key, "idempotency_key", MAX_KEY_LENGTH),
        dead_letter=task_type.dead_letter,
    )


def batch_items(items: Any) -> list[Mapping[str, Any]]:
    """A batch's items, listed: each a mapping whose keys are text. ValidationError naming
    the item, or ``items`` when it is not a collection of them at all."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ValidationError(
            'a batch must be a list of tasks ({"type", "payload", ...} each), '
            f"not a {type(items).__name__}",
            field="items",
        )
    listed = list(items)
    for index, item in enumerate(listed):
        if not isinstance(item, Mapping):
            raise ValidationError(f"item {index} must be a mapping", field=f"[{index}]")
        if not all(isinstance(key, str) for key in item):
            raise ValidationError(
                f"item {index} has a field name that is not text", field=f"[{index}]"
            )
    return listed


def new_tasks(app: TaskTypes, items: Iterable[Mapping[str, Any]], *, now: float) -> list[NewTask]:
    """Check a batch (``{"type", "payload", ...}`` each): all of it, or nothing. An error
    names the item: ``[3].priority``."""
    tasks = []
    for index, item in enumerate(batch_items(items)):
        fields = dict(item)
        if "type" not in fields:
            raise ValidationError(f"item {index} has no type", field=f"[{index}].type")
        task_type = fields.pop("type")
        payload = fields.pop("payload", None)
        try:
            tasks.append(new_task(app, task_type, payload, now, **fields))
        except ValidationError as exc:
            raise ValidationError(f"item {index}: {exc}", field=f"[{index}].{exc.field}") from None
    return tasks


# -- reading ------------------------------------------------------------------------------


def check_listing(
    *,
    status: Any,
    type: Any,
    queue: Any,
    limit: Any,
    cursor: Any,
    id_prefix: Any = None,
    idempotency_key: Any = None,
    schedule_id: Any = None,
    created_after: Any = None,
    created_before: Any = None,
) -> TaskStatus | None:
    """Check the filters and paging of a task listing; returns the status asked for."""
    check_int(limit, "limit", 1, MAX_PAGE)
    for field, value in (("type", type), ("queue", queue)):
        if value is not None:
            check_text(value, field)
    if id_prefix is not None:
        check_id_prefix(id_prefix)
    if idempotency_key is not None:
        check_text(idempotency_key, "idempotency_key", MAX_KEY_LENGTH)
    if schedule_id is not None:
        check_text(schedule_id, "schedule_id", MAX_ID_LENGTH)
    for field, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise ValidationError(f"{field} must be a time in seconds since the epoch", field=field)
    if cursor is not None and (not isinstance(cursor, str) or not _TASK_ID.fullmatch(cursor)):
        raise ValidationError(
            "cursor must be a task id: pass back a page's next_cursor", field="cursor"
        )
    try:
        return None if status is None else TaskStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in TaskStatus)
        raise ValidationError(
            f"unknown status {status!r}; known: {known}", field="status"
        ) from None


#: A task id's shape, each place: ``x`` a lowercase hex digit, ``-`` a dash.
_ID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def check_id_prefix(value: Any) -> str:
    """The start of a task id: 1-36 lowercase hex digits, with dashes where ids have them."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= len(_ID_SHAPE)
        or any(
            (char != "-") if place == "-" else char not in "0123456789abcdef"
            for char, place in zip(value, _ID_SHAPE, strict=False)
        )
    ):
        raise ValidationError(
            "id_prefix must be the start of a task id: lowercase hex digits and dashes "
            "where ids have them (0192f3a1-7c…)",
            field="id_prefix",
        )
    return value


def check_include(value: Any) -> frozenset[str]:
    """The fields a listing adds to its summaries, from ``"payload,result"`` or an
    iterable of names; empty for None."""
    if value is None:
        return frozenset()
    names = value.split(",") if isinstance(value, str) else value
    try:
        wanted = frozenset(name.strip() for name in names if name.strip())
    except (TypeError, AttributeError):
        wanted = frozenset({""})
    if not wanted <= TASK_DATA:
        raise ValidationError(
            "include may name payload and result (comma-separated), nothing else",
            field="include",
        )
    return wanted


#: What a bulk operation's filter may name. It must name at least one: a bulk operation
#: over every task is asked for by naming the statuses.
FILTER_FIELDS = ("status", "type", "queue", "created_after", "created_before")


def check_filter(action: Bulk | str, fields: Mapping[str, Any]) -> Selection:
    """Check the filter of a bulk cancel, requeue or purge; returns what it selects.

    ``status`` is one status or a list of them, each one ``action`` can touch (by default,
    all of those); ``type`` and ``queue`` are names; ``created_after`` (inclusive) and
    ``created_before`` (exclusive) are times as :func:`parse_time` reads them. ``None``
    means the field is not given.
    """
    try:
        action = Bulk(action)
    except ValueError:
        raise ValidationError(
            f"unknown bulk operation {action!r}; known: {', '.join(Bulk)}", field="action"
        ) from None
    unknown = sorted(fields.keys() - set(FILTER_FIELDS))
    if unknown:
        raise ValidationError(f"unknown filter field {unknown[0]!r}", field=unknown[0])
    given = {name: value for name, value in fields.items() if value is not None}
    if not given:
        raise ValidationError(
            f"a bulk {action.value} needs a filter: at least one of {', '.join(FILTER_FIELDS)}",
            field="status",
        )
    touched = BULK_STATUSES[action]
    statuses = touched
    if "status" in given:
        statuses = frozenset(_statuses(given["status"]))
        if not statuses <= touched:
            names = ", ".join(sorted(status.value for status in touched))
            wrong = ", ".join(sorted(status.value for status in statuses - touched))
            raise ValidationError(
                f"a bulk {action.value} touches only {names} tasks, not {wrong}", field="status"
            )
    after = given.get("created_after")
    before = given.get("created_before")
    after = None if after is None else parse_time(after, "created_after")
    before = None if before is None else parse_time(before, "created_before")
    if after is not None and before is not None and not after < before:
        raise ValidationError(
            "created_after must be earlier than created_before", field="created_after"
        )
    type_, queue = given.get("type"), given.get("queue")
    return Selection(
        statuses=statuses,
        type=None if type_ is None else check_text(type_, "type"),
        queue=None if queue is None else check_text(queue, "queue"),
        created_after=after,
        created_before=before,
    )


def _statuses(value: Any) -> list[TaskStatus]:
    items = [value] if isinstance(value, str | TaskStatus) else value
    if not isinstance(items, list | tuple | frozenset | set) or not items:
        raise ValidationError("status must be a status or a non-empty list of them", field="status")
    found = []
    for item in items:
        try:
            found.append(TaskStatus(item))
        except ValueError:
            known = ", ".join(s.value for s in TaskStatus)
            raise ValidationError(
                f"unknown status {_shown(item)}; known: {known}", field="status"
            ) from None
    return found


def check_signal_name(name: Any) -> str:
    """A signal's name: text as :func:`check_text` wants it, and not ``.`` or ``..``, which
    a URL's path (``/workflows/{id}/signals/{name}``) cannot carry."""
    text = check_text(name, "name")
    if text in _DOT_SEGMENTS:
        raise ValidationError(f"name must not be {text!r}", field="name")
    return text


def possible_id(value: Any) -> bool:
    """Whether ``value`` could be a task's or a schedule's id (nothing else is looked up).
    Not ``.`` or ``..``: in a URL's path they name the folder or its parent."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value not in _DOT_SEGMENTS
        and _storable(value)
    )


_DOT_SEGMENTS = frozenset({".", ".."})


def check_task_id(task_id: Any) -> str:
    if not possible_id(task_id):
        raise TaskNotFound(f"no task with id {_shown(task_id)}")
    return str(task_id)


def check_schedule_id(schedule_id: Any) -> str:
    if not possible_id(schedule_id):
        raise ScheduleNotFound(f"no schedule with id {_shown(schedule_id)}")
    return str(schedule_id)


#: The largest event id (the stores' ids are 64-bit signed integers).
MAX_EVENT_ID = 2**63 - 1


def check_event_id(event_id: Any, field: str = "after") -> int:
    """An event id to read on from: a whole number from 0 (before the first event)."""
    if (
        isinstance(event_id, bool)
        or not isinstance(event_id, int)
        or not 0 <= event_id <= MAX_EVENT_ID
    ):
        raise ValidationError(
            f"{field} must be an event id: a whole number from 0 to {MAX_EVENT_ID}",
            field=field,
        )
    return int(event_id)


def _shown(value: Any) -> str:
    """``value`` as an error message shows it: its repr (cut short), or its type's name
    when its repr fails."""
    try:
        text = repr(value)
    except Exception:  # a caller's object, whose __repr__ may raise anything
        return f"<{type(value).__name__}>"
    return text if len(text) <= MAX_ID_LENGTH else text[:MAX_ID_LENGTH] + "…"


# -- schedules ----------------------------------------------------------------------------


def check_schedule_name(name: Any) -> str:
    if not isinstance(name, str) or not _SCHEDULE_NAME.fullmatch(name):
        raise ValidationError(
            "name must be 1-128 letters, digits, '_', '.', ':' or '-'", field="name"
        )
    return name


def parse_every(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"1d"``, one second to ten
    years."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif (
            isinstance(value, str)
            and len(value) <= MAX_DURATION_TEXT
            and (match := _DURATION.match(value))
        ):
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        else:
            raise ValidationError(
                f"every must be seconds or a duration like '30s', '5m', '2h'; got {value!r}",
                field="every",
            )
    except OverflowError:
        seconds = math.inf
    if not MIN_EVERY <= seconds <= MAX_EVERY:  # NaN fails this too
        raise ValidationError("every must be between 1 second and 10 years", field="every")
    return seconds


def zone(name: Any) -> ZoneInfo:
    """The IANA time zone ``name``; UTC for None."""
    if name is None:
        return ZoneInfo("UTC")
    if not isinstance(name, str):
        raise ValidationError("timezone must be an IANA name like 'Europe/Paris'", field="timezone")
    try:
        if len(name) > MAX_ZONE_LENGTH or "\x00" in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tz-data folder's name
        raise ValidationError(f"unknown timezone {_shown(name)}", field="timezone") from None


def check_cron(expression: Any, timezone: Any) -> None:
    """Five cron fields croniter reads, in a known zone, with a next slot in range."""
    if (
        not isinstance(expression, str)
        or len(expression) > MAX_CRON_LENGTH
        or len(expression.split()) != 5
    ):
        raise ValidationError(
            "cron must have five fields: minute hour day-of-month month day-of-week",
            field="cron",
        )
    if "\x00" in expression or not croniter.is_valid(expression):
        raise ValidationError(f"cron expression {expression!r} is not valid", field="cron")
    tz = zone(timezone)
    try:  # valid, but does it ever fire? ("0 0 30 2 *" does not)
        croniter(expression, datetime.now(tz)).get_next(float)
    except (CroniterError, ValueError, OverflowError, KeyError):
        raise ValidationError(f"cron expression {expression!r} never fires", field="cron") from None
