"""Bulk operations and retention as pure decisions, and the rules of a bulk filter."""

from __future__ import annotations

from typing import Any

import pytest

from trellis_actors import ValidationError, rules
from trellis_actors.decisions import (
    BULK_STATUSES,
    Bulk,
    Selection,
    bulk,
    cancel,
    prunable,
    revive,
    selects,
)
from trellis_actors.lifecycle import CANCELLABLE, TERMINAL, Task, TaskStatus

S = TaskStatus


def task(status: S, **fields: Any) -> Task:
    fields.setdefault("finished_at", 100.0 if status in TERMINAL else None)
    return Task(id="t", type="echo", queue="q", payload=None, status=status, **fields)


class TestDecisions:
    @pytest.mark.parametrize("status", list(S))
    def test_cancel_moves_exactly_the_cancellable(self, status: S) -> None:
        change = cancel(task(status), 5.0)
        if status in CANCELLABLE:
            assert change is not None and change.task.status is S.CANCELLED
            assert [m.event.detail for m in change.moves] == ["cancelled by request"]
        else:
            assert change is None

    @pytest.mark.parametrize("status", list(S))
    def test_revive_moves_only_the_dead(self, status: S) -> None:
        change = revive(task(status, attempt=3), 5.0)
        if status is S.DEAD:
            assert change is not None and (change.task.status, change.task.attempt) == (
                S.QUEUED,
                0,
            )
        else:
            assert change is None

    def test_a_purge_is_no_move(self) -> None:
        with pytest.raises(ValueError, match="purge deletes tasks"):
            bulk(Bulk.PURGE, task(S.DEAD), 5.0)

    def test_selects_by_every_field(self) -> None:
        one = task(S.QUEUED, created_at=10.0)
        everything = Selection(frozenset(S))
        assert selects(everything, one)
        assert not selects(Selection(frozenset({S.PENDING})), one)
        assert not selects(Selection(frozenset(S), type="other"), one)
        assert not selects(Selection(frozenset(S), queue="other"), one)
        assert selects(Selection(frozenset(S), created_after=10.0, created_before=10.5), one)
        assert not selects(Selection(frozenset(S), created_before=10.0), one)
        assert not selects(Selection(frozenset(S), created_after=10.5), one)

    def test_prunable_per_status(self) -> None:
        cutoffs = {S.COMPLETED: 200.0, S.CANCELLED: 50.0, S.QUEUED: 1e9}
        assert prunable(task(S.COMPLETED), cutoffs)
        assert not prunable(task(S.CANCELLED), cutoffs)  # ended at 100, after its cutoff
        assert not prunable(task(S.DEAD), cutoffs)  # no cutoff: kept
        assert not prunable(task(S.QUEUED), cutoffs)  # on its way: never


class TestCheckFilter:
    def test_statuses_default_to_what_the_operation_touches(self) -> None:
        for action in Bulk:
            assert rules.check_filter(action, {"type": "x"}).statuses == BULK_STATUSES[action]

    def test_times_and_names(self) -> None:
        selection = rules.check_filter(
            "cancel",
            {
                "status": ["queued", S.RUNNING],
                "queue": "q",
                "created_after": "2026-01-01",
                "created_before": 1767312000.0,
            },
        )
        assert selection == Selection(
            frozenset({S.QUEUED, S.RUNNING}),
            queue="q",
            created_after=1767225600.0,
            created_before=1767312000.0,
        )

    @pytest.mark.parametrize(
        ("action", "fields", "field", "message"),
        [
            ("cancel", {}, "status", "a bulk cancel needs a filter"),
            ("cancel", {"type": None}, "status", "needs a filter"),
            ("explode", {"type": "x"}, "action", "unknown bulk operation"),
            ("purge", {"status": "queued"}, "status", "touches only cancelled, completed"),
            ("cancel", {"status": "nope"}, "status", "unknown status 'nope'"),
            ("cancel", {"status": 3}, "status", "non-empty list"),
            ("cancel", {"queue": "a\x00b"}, "queue", "NUL"),
            ("cancel", {"owner": "me"}, "owner", "unknown filter field"),
            ("cancel", {"created_before": "2020-01-01", "created_after": "2020-01-01"},
             "created_after", "earlier than"),
        ],
    )  # fmt: skip
    def test_refusals(self, action: str, fields: dict[str, Any], field: str, message: str) -> None:
        with pytest.raises(ValidationError, match=message) as caught:
            rules.check_filter(action, fields)
        assert caught.value.field == field
