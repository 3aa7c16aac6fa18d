"""Reading the UI's forms: text to values, and every problem to the field it belongs to.

Everything is checked before anything is stored, with the rules every other way in meets
(:mod:`trellis_actors.rules`, through ``Runtime.new_task`` and ``define``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import rules
from .._time import iso
from ..errors import TrellisError, UnknownTaskType, ValidationError
from ..runtime.runtime import Runtime
from ..scheduling.model import Schedule
from ..stores.base import NewTask

#: The submit form's fields.
TASK_FIELDS = ("type", "payload", "queue", "priority", "delay")
#: The schedule form's fields; ``when`` holds the ``every``, ``cron`` or ``at`` value.
SCHEDULE_FIELDS = ("name", "task_type", "payload", "kind", "when", "timezone", "misfire", "queue")
KINDS = ("every", "cron", "at")


def parse_json(text: str, field: str) -> Any:
    """JSON text to a value that meets the rules; empty text is ``null``."""
    return rules.parse_json(text, field) if text.strip() else None


def parse_int(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a whole number", field=field) from None


def parse_number(text: str, field: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a number of seconds", field=field) from None


def field_of(exc: TrellisError, known: tuple[str, ...], aliases: Mapping[str, str]) -> str:
    """The form field an error belongs to; ``form`` when it is none of them."""
    if isinstance(exc, UnknownTaskType):
        return aliases.get("type", "type")
    name = exc.field if isinstance(exc, ValidationError) and exc.field else "form"
    name = name.split(".", 1)[0]  # payload.to (a contract's field) is the payload's
    name = aliases.get(name, name)
    return name if name in known else "form"


def submission(runtime: Runtime, form: Mapping[str, str]) -> NewTask:
    """The task the submit form describes; raises ValidationError or UnknownTaskType."""
    fields: dict[str, Any] = {}
    payload = parse_json(form.get("payload", ""), "payload")
    if queue := form.get("queue", "").strip():
        fields["queue"] = queue
    if (priority := parse_int(form.get("priority", ""), "priority")) is not None:
        fields["priority"] = priority
    if (delay := parse_number(form.get("delay", ""), "delay")) is not None:
        fields["delay"] = delay
    return runtime.new_task(form.get("type", ""), payload, **fields)


def task_errors(exc: TrellisError) -> dict[str, str]:
    return {field_of(exc, (*TASK_FIELDS, "form"), {}): str(exc)}


def schedule_spec(form: Mapping[str, str]) -> tuple[str, str, Any, dict[str, Any]]:
    """``(name, task_type, payload, spec)`` for ``Runtime.add_schedule``."""
    kind = form.get("kind", "every")
    if kind not in KINDS:
        raise ValidationError("choose every, cron or at", field="kind")
    when = form.get("when", "").strip()
    if not when:
        raise ValidationError(f"{kind} needs a value", field=kind)
    spec: dict[str, Any] = {kind: when, "misfire": form.get("misfire", "skip")}
    if timezone := form.get("timezone", "").strip():
        spec["timezone"] = timezone
    if queue := form.get("queue", "").strip():
        spec["queue"] = queue
    payload = parse_json(form.get("payload", ""), "payload")
    return form.get("name", "").strip(), form.get("task_type", ""), payload, spec


def schedule_errors(exc: TrellisError) -> dict[str, str]:
    aliases = {"type": "task_type", "every": "when", "cron": "when", "at": "when"}
    return {field_of(exc, (*SCHEDULE_FIELDS, "form"), aliases): str(exc)}


def schedule_changes(form: Mapping[str, str]) -> dict[str, Any]:
    """The changes the edit form asks for, as ``Runtime.update_schedule`` takes them: every
    field (an empty timezone or queue clears it)."""
    name, task_type, payload, spec = schedule_spec(form)
    spec.setdefault("timezone", None)
    spec.setdefault("queue", None)
    return {"name": name, "task_type": task_type, "payload": payload, **spec}


def values_of(schedule: Schedule) -> dict[str, str]:
    """The edit form's fields for a stored schedule."""
    if schedule.every is not None:
        kind, when = "every", f"{schedule.every:g}s"
    elif schedule.cron is not None:
        kind, when = "cron", schedule.cron
    else:
        kind, when = "at", iso(schedule.at) or ""
    return {
        "name": schedule.name,
        "task_type": schedule.task_type,
        "payload": json.dumps(schedule.payload, indent=2, ensure_ascii=False),
        "kind": kind,
        "when": when,
        "timezone": schedule.timezone or "",
        "misfire": schedule.misfire.value,
        "queue": schedule.queue or "",
    }
