"""Restart intensity, and escalation through nested supervisors."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import (
    STEADY,
    Crash,
    Exit,
    Get,
    Journal,
    named,
    probe,
    run_to_end,
    running,
)

from trellis_actors.actors import ChildSpec, Intensity, Supervisor
from trellis_actors.errors import SupervisorEscalation


class TestIntensity:
    def test_rejects_bad_values(self) -> None:
        """A negative restart count or an empty window is refused."""
        with pytest.raises(ValueError, match="max_restarts >= 0 and within > 0"):
            Intensity(-1, 10)
        with pytest.raises(ValueError, match="max_restarts >= 0 and within > 0"):
            Intensity(1, 0)

    def test_default(self) -> None:
        """By default a supervisor allows 10 restarts a minute."""
        assert Supervisor().intensity == Intensity(max_restarts=10, within=60.0)

    async def test_gives_up_past_the_limit(self, autojump_clock: trio.testing.MockClock) -> None:
        """One restart more than max_restarts within the window makes the supervisor fail."""
        journal = Journal()
        spec = probe(journal, "p")
        for n in ("first", "second", "third"):
            spec.ref.tell_nowait(Crash(n))  # each incarnation takes one
        supervisor = named(Supervisor([spec], intensity=Intensity(2, 10), backoff=STEADY), "sup")

        with pytest.raises(
            SupervisorEscalation,
            match=r"^supervisor 'sup' gave up: child 'p' exceeded the restart intensity; "
            r"last error: RuntimeError\('third'\)$",
        ) as info:
            await run_to_end(supervisor)

        assert journal.count("start", "p") == 3
        assert trio.current_time() == pytest.approx(1.0 + 2.0)  # two backoff delays
        assert (info.value.supervisor, info.value.child) == ("sup", "p")
        assert isinstance(info.value.last_error, RuntimeError)

    async def test_zero_restarts(self, autojump_clock: trio.testing.MockClock) -> None:
        """With max_restarts=0 the first crash escalates at once."""
        spec = probe(Journal(), "p")
        spec.ref.tell_nowait(Crash())
        supervisor = Supervisor([spec], intensity=Intensity(0, 10))

        with pytest.raises(SupervisorEscalation, match="child 'p' exceeded"):
            await run_to_end(supervisor)
        assert trio.current_time() == 0

    async def test_clean_exits_count(self, autojump_clock: trio.testing.MockClock) -> None:
        """Restarting a permanent child after a clean exit counts too; no error is named."""
        spec = probe(Journal(), "p")
        spec.ref.tell_nowait(Exit())
        supervisor = Supervisor([spec], intensity=Intensity(0, 10))

        with pytest.raises(SupervisorEscalation, match=r"last error: None$"):
            await run_to_end(supervisor)

    async def test_old_restarts_expire(self, autojump_clock: trio.testing.MockClock) -> None:
        """Restarts older than the window no longer count."""
        journal = Journal()
        spec = probe(journal, "p")
        supervisor = Supervisor([spec], intensity=Intensity(1, 5), backoff=STEADY)
        async with running(supervisor):
            for round_ in range(1, 4):
                await spec.ref.tell(Crash())
                await journal.wait_for("start", "p", round_ + 1)
                await trio.sleep(5)

            snap = supervisor.snapshot().find("p")
            assert snap is not None
            assert (snap.state, snap.restarts) == ("running", 3)

    async def test_gives_up_stopping_the_rest(self, autojump_clock: trio.testing.MockClock) -> None:
        """A supervisor that gives up stops its other children in reverse order first."""
        journal = Journal()
        crashing = probe(journal, "b")
        crashing.ref.tell_nowait(Crash())
        children = [probe(journal, "a"), crashing, probe(journal, "c")]
        supervisor = Supervisor(children, intensity=Intensity(0, 10))

        with pytest.raises(SupervisorEscalation):
            await run_to_end(supervisor)
        assert journal.order("stop") == ["b", "c", "a"]
        assert [s.state for s in supervisor.child_snapshots()] == ["stopped", "failed", "stopped"]


def _nest(leaf: ChildSpec, *, inner: Intensity) -> ChildSpec:
    """A child supervisor made afresh, around the same leaf spec, at every restart."""
    return ChildSpec("inner", lambda: Supervisor([leaf], intensity=inner, backoff=STEADY))


class TestEscalation:
    async def test_parent_restarts_the_child_supervisor(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A child supervisor that gives up is restarted by its parent like any child."""
        journal = Journal()
        leaf = probe(journal, "leaf")
        outer = Supervisor([_nest(leaf, inner=Intensity(0, 10))], backoff=STEADY)
        async with running(outer):
            await leaf.ref.tell(Crash("leaf broke"))
            await journal.wait_for("start", "leaf", 2)
            await trio.testing.wait_all_tasks_blocked()

            inner = outer.snapshot().find("inner")
            assert inner is not None
            assert (inner.kind, inner.state, inner.restarts) == ("supervisor", "running", 1)
            assert inner.last_error is not None
            assert inner.last_error.startswith("SupervisorEscalation(\"supervisor 'inner' gave up")
            assert "RuntimeError('leaf broke')" in inner.last_error
            assert await leaf.ref.ask(Get()) == 0

    async def test_escalates_through_two_levels(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """When the parent's intensity is spent too, the parent fails in turn."""
        journal = Journal()
        leaf = probe(journal, "leaf", fail_on_start=True)
        outer = named(
            Supervisor(
                [_nest(leaf, inner=Intensity(0, 10))], intensity=Intensity(1, 10), backoff=STEADY
            ),
            "outer",
        )

        with pytest.raises(
            SupervisorEscalation,
            match=r"^supervisor 'outer' gave up: child 'inner' exceeded the restart intensity; "
            r"last error: SupervisorEscalation\(\"supervisor 'inner' gave up: child 'leaf'",
        ) as info:
            await run_to_end(outer)

        assert trio.current_time() == pytest.approx(1.0)  # inner was restarted once
        cause = info.value.last_error
        assert isinstance(cause, SupervisorEscalation)
        assert (cause.supervisor, cause.child) == ("inner", "leaf")
        assert isinstance(cause.last_error, RuntimeError)
        assert str(cause.last_error) == "leaf cannot start"
