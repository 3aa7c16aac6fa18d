"""Scheduler fixtures: a wall clock that follows trio's virtual clock."""

from __future__ import annotations

import pytest
from tests.integration.scheduling.kit import WallClock

from trellis_actors import _time


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    """A wall clock on trio's (virtual) timeline, shared by every runtime the test opens.

    A runtime's clock maps trio time onto the wall clock when the runtime starts, so two
    runtimes opened one after the other in virtual time would disagree about the date: the
    second would not see the virtual time that passed between them. Outage and restart
    tests need one timeline, so here the wall clock is ``base + trio.current_time()``.
    Pytest-trio only runs a test in virtual time if the test itself asks for
    ``autojump_clock``, so such tests ask for both.
    """
    clock = WallClock()
    monkeypatch.setattr(_time, "time", clock)  # _time reads the wall clock as time.time()
    return clock
