"""Wall-clock time derived from trio's clock, so virtual time moves task times too."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import trio

_EPOCH: trio.lowlevel.RunVar[float] = trio.lowlevel.RunVar("trellis_epoch")


class Clock:
    """Maps trio time to seconds since the epoch, anchored once per ``trio.run``.

    Under a real clock this tracks the wall clock; under ``MockClock`` task timestamps,
    delays and leases follow virtual time — and every runtime of one run shares the
    anchor, so a runtime opened after a (virtual) outage sees the outage.
    """

    def __init__(self) -> None:
        try:
            self._epoch = _EPOCH.get()
        except LookupError:
            self._epoch = time.time() - trio.current_time()
            _EPOCH.set(self._epoch)

    def now(self) -> float:
        return self._epoch + trio.current_time()

    def to_trio(self, at: float) -> float:
        """The trio time at which the wall-clock time ``at`` comes."""
        return at - self._epoch


def moment(at: float | None) -> datetime | None:
    """``at`` as an aware UTC datetime; None for no time, and for a time ``datetime``
    cannot hold (years 1 to 9999), such as one an older version let into a store."""
    if at is None:
        return None
    try:
        return datetime.fromtimestamp(at, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def iso(at: float | None) -> str | None:
    """ISO 8601 text in UTC (``…Z``); None for no time or one out of range (see
    :func:`moment`): a task or schedule holding one still shows, with that time null."""
    shown = moment(at)
    return None if shown is None else shown.isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Seconds since the epoch from ISO 8601 text; naive times are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
