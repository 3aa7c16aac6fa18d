"""Stopping a supervisor: order, per-child timeouts, and nothing left running."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Add, Crash, Get, Hold, Journal, probe, running

from trellis_actors.actors import ChildSpec, Supervisor


def assert_all_stopped(journal: Journal) -> None:
    """Every probe that started has stopped as often."""
    for name in set(journal.order("start")):
        assert journal.count("stop", name) == journal.count("start", name), name


class TestShutdown:
    async def test_reverse_start_order(self, autojump_clock: trio.testing.MockClock) -> None:
        """Children stop in reverse start order, a child supervisor's own children included."""
        journal = Journal()
        inner = ChildSpec("inner", lambda: Supervisor([probe(journal, "x"), probe(journal, "y")]))
        children = [probe(journal, "a"), inner, probe(journal, "c")]
        async with running(Supervisor(children)):
            assert journal.order("start") == ["a", "x", "y", "c"]

        assert journal.order("stop") == ["c", "y", "x", "a"]
        assert trio.current_time() == 0  # cooperative children stop at once

    async def test_ends_stopped(self, autojump_clock: trio.testing.MockClock) -> None:
        """After the stop every child is stopped and no probe still runs."""
        journal = Journal()
        supervisor = Supervisor([probe(journal, "a"), probe(journal, "b")])
        async with running(supervisor):
            pass

        assert [s.state for s in supervisor.child_snapshots()] == ["stopped", "stopped"]
        assert supervisor.snapshot().state == "stopped"
        assert_all_stopped(journal)

    async def test_deaf_child_is_cancelled(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child that ignores the stop request is cancelled after its shutdown timeout."""
        journal = Journal()
        a = probe(journal, "a", shutdown_timeout=2)
        b = probe(journal, "b", shutdown_timeout=3)
        async with running(Supervisor([a, b])):
            await a.ref.tell(Hold(trio.Event()))
            await b.ref.tell(Hold(trio.Event()))
            stop_at = trio.current_time()

        assert journal.order("stop") == ["b", "a"]
        assert journal.times("stop", "b") == [pytest.approx(stop_at + 3)]
        assert journal.times("stop", "a") == [pytest.approx(stop_at + 3 + 2)]

    async def test_only_deaf_children_wait(self, autojump_clock: trio.testing.MockClock) -> None:
        """Only the child that ignores the request costs its timeout."""
        journal = Journal()
        deaf = probe(journal, "deaf", shutdown_timeout=4)
        children = [probe(journal, "a", shutdown_timeout=30), deaf, probe(journal, "c")]
        async with running(Supervisor(children)):
            await deaf.ref.tell(Hold(trio.Event()))

        assert journal.order("stop") == ["c", "deaf", "a"]
        assert trio.current_time() == pytest.approx(4)

    async def test_zero_timeout(self, autojump_clock: trio.testing.MockClock) -> None:
        """A shutdown timeout of 0 cancels a busy child straight away."""
        journal = Journal()
        spec = probe(journal, "p", shutdown_timeout=0)
        async with running(Supervisor([spec])):
            await spec.ref.tell(Hold(trio.Event()))

        assert journal.count("stop", "p") == 1
        assert trio.current_time() == 0

    async def test_stop_while_backing_off(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child waiting to be restarted is not restarted once the supervisor stops."""
        journal = Journal()
        spec = probe(journal, "p")
        supervisor = Supervisor([spec], backoff=STEADY)
        async with running(supervisor):
            await spec.ref.tell(Crash())
            await trio.testing.wait_all_tasks_blocked()
            assert supervisor.snapshot().find("p").state == "backing-off"  # type: ignore[union-attr]

        assert trio.current_time() == 0
        assert journal.count("start", "p") == 1
        assert supervisor.snapshot().find("p").state == "stopped"  # type: ignore[union-attr]

    async def test_mail_waits_for_the_next_supervisor(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Mail sent while no supervisor runs is handled by one built from the same spec."""
        journal = Journal()
        spec = probe(journal, "p")
        async with running(Supervisor([spec])):
            pass
        await spec.ref.tell(Add(3))

        async with running(Supervisor([spec])):
            assert await spec.ref.ask(Get()) == 3
        assert journal.count("start", "p") == 2

    async def test_cancelled_from_outside(self, autojump_clock: trio.testing.MockClock) -> None:
        """A supervisor cancelled by its owner ends at once, without waiting out timeouts."""
        journal = Journal()
        spec = probe(journal, "p", shutdown_timeout=5)
        with trio.CancelScope() as scope:
            async with running(Supervisor([spec])):
                scope.cancel()

        assert trio.current_time() == 0
        assert journal.order("stop") == ["p"]

    async def test_owner_fails(self, autojump_clock: trio.testing.MockClock) -> None:
        """An error in the owner's body tears the tree down at once and propagates."""
        journal = Journal()
        spec = probe(journal, "p", shutdown_timeout=5)
        with pytest.RaisesGroup(pytest.RaisesExc(KeyError, match="owner broke")):
            async with running(Supervisor([spec])):
                raise KeyError("owner broke")

        assert trio.current_time() == 0
        assert journal.order("stop") == ["p"]
