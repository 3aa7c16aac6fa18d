"""Supervisors: start order, strategies and restart types."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Add, Crash, Exit, Get, Journal, probe, running

from trellis_actors.actors import ChildSpec, RestartType, Strategy, Supervisor, WhichChildren
from trellis_actors.errors import ActorStopped, ConfigurationError

settle = trio.testing.wait_all_tasks_blocked


def three(journal: Journal, **options: object) -> list[ChildSpec]:
    return [probe(journal, name, **options) for name in ("a", "b", "c")]


class TestStart:
    async def test_children_start_in_order(self, autojump_clock: trio.testing.MockClock) -> None:
        """Every child has started, in order, when the supervisor reports started."""
        journal = Journal()
        supervisor = Supervisor(three(journal))
        async with running(supervisor) as ref:
            assert journal.order("start") == ["a", "b", "c"]
            assert ref is supervisor.ref
            assert await ref.ask(WhichChildren()) == ("a", "b", "c")

    def test_names_must_be_unique(self) -> None:
        """Two children with one name are refused up front."""
        journal = Journal()
        with pytest.raises(ConfigurationError, match="two children are named 'a'; names must be"):
            Supervisor([probe(journal, "a"), probe(journal, "a")])

    async def test_child_failing_to_start(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child that crashes while starting does not stop its siblings from starting."""
        journal = Journal()
        children = [probe(journal, "a", fail_on_start=True), probe(journal, "b")]
        supervisor = Supervisor(children, backoff=STEADY)
        async with running(supervisor):
            assert journal.order("start") == ["b"]
            await settle()
            snap = supervisor.snapshot().find("a")
            assert snap is not None
            assert snap.state == "backing-off"
            assert snap.last_error == "RuntimeError('a cannot start')"


class TestStrategies:
    async def test_one_for_one(self, autojump_clock: trio.testing.MockClock) -> None:
        """Only the crashed child is restarted."""
        journal = Journal()
        a, b, c = three(journal)
        supervisor = Supervisor([a, b, c], strategy=Strategy.ONE_FOR_ONE, backoff=STEADY)
        async with running(supervisor):
            await b.ref.tell(Crash())
            await journal.wait_for("start", "b", 2)
            await settle()

            assert journal.order("start") == ["a", "b", "c", "b"]
            assert journal.order("stop") == ["b"]
            assert [s.restarts for s in supervisor.child_snapshots()] == [0, 1, 0]

    async def test_one_for_all(self, autojump_clock: trio.testing.MockClock) -> None:
        """Every child is restarted; the others stop in reverse start order first."""
        journal = Journal()
        a, b, c = three(journal)
        supervisor = Supervisor([a, b, c], strategy=Strategy.ONE_FOR_ALL, backoff=STEADY)
        async with running(supervisor):
            await b.ref.tell(Crash())
            await journal.wait_for("start", "c", 2)
            await settle()

            assert journal.order("stop") == ["b", "c", "a"]
            assert journal.order("start") == ["a", "b", "c", "a", "b", "c"]
            assert [s.restarts for s in supervisor.child_snapshots()] == [1, 1, 1]

    async def test_rest_for_one(self, autojump_clock: trio.testing.MockClock) -> None:
        """The crashed child and those started after it are restarted, in order."""
        journal = Journal()
        a, b, c = three(journal)
        supervisor = Supervisor([a, b, c], strategy=Strategy.REST_FOR_ONE, backoff=STEADY)
        async with running(supervisor):
            await b.ref.tell(Crash())
            await journal.wait_for("start", "c", 2)
            await settle()

            assert journal.order("stop") == ["b", "c"]
            assert journal.order("start") == ["a", "b", "c", "b", "c"]
            assert [s.restarts for s in supervisor.child_snapshots()] == [0, 1, 1]

    @pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
    async def test_siblings_share_the_delay(
        self, strategy: Strategy, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Children restarted together come back together, after one backoff delay."""
        journal = Journal()
        a, b, c = three(journal)
        supervisor = Supervisor([a, b, c], strategy=strategy, backoff=STEADY)
        async with running(supervisor):
            crashed_at = trio.current_time()
            await a.ref.tell(Crash())
            await journal.wait_for("start", "c", 2)

            assert journal.times("start", "b")[1] == pytest.approx(crashed_at + 1.0)
            assert journal.times("start", "c")[1] == pytest.approx(crashed_at + 1.0)

    @pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
    async def test_temporary_sibling_is_not_restarted(
        self, strategy: Strategy, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A temporary sibling is stopped and forgotten, never restarted."""
        journal = Journal()
        a, c = probe(journal, "a"), probe(journal, "c")
        t = probe(journal, "t", restart=RestartType.TEMPORARY)
        supervisor = Supervisor([a, t, c], strategy=strategy, backoff=STEADY)
        async with running(supervisor) as ref:
            await a.ref.tell(Crash())
            await journal.wait_for("start", "c", 2)
            await settle()

            assert journal.count("start", "t") == 1
            assert await ref.ask(WhichChildren()) == ("a", "c")
            with pytest.raises(ActorStopped):
                await t.ref.tell(Add())


class TestRestartTypes:
    @pytest.mark.parametrize(
        ("restart", "end", "restarted"),
        [
            (RestartType.PERMANENT, Crash(), True),
            (RestartType.PERMANENT, Exit(), True),
            (RestartType.TRANSIENT, Crash(), True),
            (RestartType.TRANSIENT, Exit(), False),
        ],
    )
    async def test_restarted_when(
        self,
        restart: RestartType,
        end: Crash | Exit,
        restarted: bool,
        autojump_clock: trio.testing.MockClock,
    ) -> None:
        """Permanent children always come back, transient ones only after a crash."""
        journal = Journal()
        spec = probe(journal, "p", restart=restart)
        supervisor = Supervisor([spec], backoff=STEADY)
        async with running(supervisor) as ref:
            await spec.ref.tell(Add(5))
            await spec.ref.tell(end)
            await trio.sleep(10)  # far past the 1 s restart delay

            assert journal.count("start", "p") == (2 if restarted else 1)
            snap = supervisor.snapshot().find("p")
            assert snap is not None
            assert snap.restarts == (1 if restarted else 0)
            assert snap.state == ("running" if restarted else "stopped")
            assert snap.last_error == ("RuntimeError('boom')" if end == Crash() else None)
            assert await ref.ask(WhichChildren()) == ("p",)
            if restarted:
                assert await spec.ref.ask(Get()) == 0  # state is not carried over

    @pytest.mark.parametrize("end", [Crash(), Exit()])
    async def test_temporary_is_forgotten(
        self, end: Crash | Exit, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A temporary child is never restarted; it leaves the supervisor and its mailbox closes."""
        journal = Journal()
        spec = probe(journal, "t", restart=RestartType.TEMPORARY)
        supervisor = Supervisor([spec, probe(journal, "other")], backoff=STEADY)
        async with running(supervisor) as ref:
            await spec.ref.tell(end)
            await trio.sleep(10)

            assert journal.count("start", "t") == 1
            assert await ref.ask(WhichChildren()) == ("other",)
            assert supervisor.snapshot().find("t") is None
            with pytest.raises(ActorStopped, match="mailbox is closed"):
                await spec.ref.tell(Add())

    async def test_stopped_transient_restarts_with_all(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Under one_for_all a transient child that exited cleanly comes back with the rest."""
        journal = Journal()
        t = probe(journal, "t", restart=RestartType.TRANSIENT)
        p = probe(journal, "p")
        supervisor = Supervisor([t, p], strategy=Strategy.ONE_FOR_ALL, backoff=STEADY)
        async with running(supervisor):
            await t.ref.tell(Exit())
            await settle()
            await p.ref.tell(Crash())
            await journal.wait_for("start", "p", 2)

            assert journal.count("start", "t") == 2
