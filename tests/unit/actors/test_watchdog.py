"""The idle watchdog: hung children are restarted, idle ones are left alone."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Beat, Journal, probe, run_to_end, running

from trellis_actors.actors import Intensity, Supervisor
from trellis_actors.errors import ActorHung, SupervisorEscalation


class TestWatchdog:
    async def test_restarts_a_hung_child(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child silent for longer than idle_timeout is restarted with ActorHung."""
        journal = Journal()
        spec = probe(journal, "p", idle_timeout=2)
        supervisor = Supervisor([spec], backoff=STEADY)
        async with running(supervisor):
            await spec.ref.tell(Beat(times=3, every=1))  # alive until t=3, then silent
            restarted_at = await journal.wait_for("start", "p", 2)
            await trio.testing.wait_all_tasks_blocked()

            # Seen within a quarter of the timeout past it, then restarted 1 s later.
            assert 3 + 2 + 1 < restarted_at <= 3 + 2 + 0.5 + 1
            snap = supervisor.snapshot().find("p")
            assert snap is not None
            assert snap.restarts == 1
            assert snap.last_error == "ActorHung('p sent no liveness signal for 2s')"

    async def test_idle_child_is_not_hung(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child waiting on an empty mailbox is idle, not hung."""
        journal = Journal()
        spec = probe(journal, "p", idle_timeout=1)
        supervisor = Supervisor([spec], backoff=STEADY)
        async with running(supervisor):
            await trio.sleep(100)

            assert journal.count("start", "p") == 1
            assert supervisor.snapshot().find("p").restarts == 0  # type: ignore[union-attr]

    async def test_alive_keeps_a_busy_child(self, autojump_clock: trio.testing.MockClock) -> None:
        """A long job that keeps calling alive() is left to run."""
        journal = Journal()
        spec = probe(journal, "p", idle_timeout=2, shutdown_timeout=0)
        async with running(Supervisor([spec], backoff=STEADY)):
            await spec.ref.tell(Beat(times=1000, every=1.5))
            await trio.sleep(100)

            assert journal.count("start", "p") == 1

    async def test_hung_child_counts_as_a_crash(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A hang is a failure: it counts toward the intensity like a crash."""
        journal = Journal()
        spec = probe(journal, "p", idle_timeout=1)
        spec.ref.tell_nowait(Beat(times=0, every=0))
        supervisor = Supervisor([spec], intensity=Intensity(0, 10))

        with pytest.raises(SupervisorEscalation, match="last error: ActorHung") as info:
            await run_to_end(supervisor)
        assert isinstance(info.value.last_error, ActorHung)
