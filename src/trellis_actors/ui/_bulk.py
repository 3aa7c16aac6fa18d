"""The task list's bulk bar: which of its filters a bulk operation selects by, what the bar
shows, and actions on chosen rows (here and in the dead letter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from ..decisions import BULK_STATUSES, Bulk
from ..errors import InvalidTransition, TaskNotFound, ValidationError

#: The task list's filters a bulk operation selects by, with the runtime's names for them.
#: Times are the form's ``datetime-local`` text, read as UTC by the rules.
BULK_FILTERS = {
    "status": "status",
    "type": "type",
    "queue": "queue",
    "after": "created_after",
    "before": "created_before",
}
#: The task list's filters with no bulk counterpart: a bulk action refuses them.
LIST_ONLY = {"id": "task id", "key": "idempotency key", "schedule": "schedule"}
#: Per action: the verb, its past tense and the scope it needs (as the API's routes).
ACTIONS: dict[Bulk, tuple[str, str, str]] = {
    Bulk.CANCEL: ("Cancel", "cancelled", "operate"),
    Bulk.REQUEUE: ("Requeue", "requeued", "operate"),
    Bulk.PURGE: ("Purge", "purged", "admin"),
}


def bulk_filter(form: Mapping[str, str]) -> dict[str, str]:
    """The runtime's filter for the task list's filters in ``form``; raises
    ValidationError for a filter a bulk operation cannot select by."""
    for name, label in LIST_ONLY.items():
        if form.get(name, "").strip():
            raise ValidationError(
                f"bulk actions select by status, type, queue and creation time, not by "
                f"{label}: clear the {label} filter first",
                field=name,
            )
    return {
        field: value
        for name, field in BULK_FILTERS.items()
        if (value := form.get(name, "").strip())
    }


def bulk_context(filters: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """What the bulk bar shows: the list's filters (sent back as hidden fields) and the
    actions that can touch tasks of the status filtered by (every action without one)."""
    kept = {name: filters.get(name, "").strip() for name in (*BULK_FILTERS, *LIST_ONLY)}
    status = kept["status"]
    return {
        "bulk_filters": {name: value for name, value in kept.items() if value},
        "bulk_actions": [
            (action.value, verb, scope)
            for action, (verb, _, scope) in ACTIONS.items()
            if not status or status in {s.value for s in BULK_STATUSES[action]}
        ],
        "bulk_query": urlencode({name: value for name, value in kept.items() if value}),
        "bulk": None,
        **extra,
    }


def plural(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"


#: Most rows one post may choose (a page shows 25 or 50): more is what a filter is for.
MOST_CHOSEN = 100


def chosen(ids: Sequence[str]) -> list[str]:
    """The chosen ids, each once; raises ValidationError for none or too many."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationError("Select at least one task.", field="ids")
    if len(unique) > MOST_CHOSEN:
        raise ValidationError(
            f"choose at most {MOST_CHOSEN} tasks; to act on more, use a filter", field="ids"
        )
    return unique


async def each(ids: Sequence[str], act: Callable[[str], Awaitable[object]]) -> tuple[int, int]:
    """Do ``act`` to each of ``ids``; a task gone or no longer in a state for it (someone
    acted first) is skipped. Returns how many were done and how many skipped."""
    done = 0
    for task_id in ids:
        try:
            await act(task_id)
        except (InvalidTransition, TaskNotFound):
            continue
        done += 1
    return done, len(ids) - done


def told(past: str, done: int, skipped: int = 0) -> str:
    """``Requeued 2 tasks. Skipped 1.``"""
    return f"{past.capitalize()} {plural(done)}." + (f" Skipped {skipped}." if skipped else "")
