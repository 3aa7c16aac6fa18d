"""Children added and removed while the supervisor runs."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Add, Crash, Get, Hold, Journal, probe, running

from trellis_actors.actors import AddChild, RemoveChild, Supervisor, WhichChildren
from trellis_actors.errors import ActorStopped, ConfigurationError


class TestAddChild:
    async def test_starts_and_replies_with_its_ref(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An added child is running when the reply comes, and is listed last."""
        journal = Journal()
        spec = probe(journal, "new")
        async with running(Supervisor([probe(journal, "a")])) as ref:
            added = await ref.ask(AddChild(spec))

            assert added is spec.ref
            assert journal.order("start") == ["a", "new"]
            assert await ref.ask(WhichChildren()) == ("a", "new")
            assert await added.ask(Get()) == 0

    async def test_is_supervised(self, autojump_clock: trio.testing.MockClock) -> None:
        """An added child is restarted like the others."""
        journal = Journal()
        spec = probe(journal, "new")
        supervisor = Supervisor(backoff=STEADY)
        async with running(supervisor) as ref:
            await ref.ask(AddChild(spec))
            await spec.ref.tell(Crash())
            await journal.wait_for("start", "new", 2)

            assert supervisor.snapshot().find("new").restarts == 1  # type: ignore[union-attr]

    async def test_duplicate_name(self, autojump_clock: trio.testing.MockClock) -> None:
        """Adding a second child with a taken name fails and leaves the first alone."""
        journal = Journal()
        first = probe(journal, "a")
        async with running(Supervisor([first])) as ref:
            with pytest.raises(
                ConfigurationError, match=r"^supervisor already has a child named 'a'$"
            ):
                await ref.ask(AddChild(probe(journal, "a")))

            assert journal.count("start", "a") == 1
            assert await first.ref.ask(Get()) == 0

    async def test_added_child_gets_a_watchdog(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A child with an idle timeout added later is watched too."""
        journal = Journal()
        spec = probe(journal, "w", idle_timeout=1)
        supervisor = Supervisor(backoff=STEADY)
        async with running(supervisor) as ref:
            await ref.ask(AddChild(spec))
            await spec.ref.tell(Hold(trio.Event()))
            await journal.wait_for("start", "w", 2)

            snap = supervisor.snapshot().find("w")
            assert snap is not None
            assert snap.last_error == "ActorHung('w sent no liveness signal for 1s')"


class TestRemoveChild:
    async def test_stops_and_forgets(self, autojump_clock: trio.testing.MockClock) -> None:
        """A removed child is stopped, unlisted, and its ref refuses mail."""
        journal = Journal()
        spec = probe(journal, "b")
        async with running(Supervisor([probe(journal, "a"), spec])) as ref:
            assert await ref.ask(RemoveChild("b")) is True

            assert journal.order("stop") == ["b"]
            assert await ref.ask(WhichChildren()) == ("a",)
            with pytest.raises(ActorStopped, match=r"^the actor's mailbox is closed$"):
                await spec.ref.tell(Add())
            with pytest.raises(ActorStopped):
                spec.ref.tell_nowait(Add())
            with pytest.raises(ActorStopped):
                await spec.ref.ask(Get())

    async def test_fails_queued_requests(self, autojump_clock: trio.testing.MockClock) -> None:
        """Requests still queued for a removed child fail with ActorStopped."""
        journal = Journal()
        spec = probe(journal, "b", shutdown_timeout=1)
        async with running(Supervisor([spec])) as ref:
            await spec.ref.tell(Hold(trio.Event()))
            queued = Get()
            await spec.ref.tell(queued)

            assert await ref.ask(RemoveChild("b")) is True
            with pytest.raises(ActorStopped, match="stopped before answering"):
                await queued.reply.wait()

    async def test_unknown_name(self, autojump_clock: trio.testing.MockClock) -> None:
        """Removing a child that is not there answers False."""
        async with running(Supervisor()) as ref:
            assert await ref.ask(RemoveChild("nobody")) is False

    async def test_while_backing_off(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child removed while waiting for its restart is never restarted."""
        journal = Journal()
        spec = probe(journal, "b")
        async with running(Supervisor([spec], backoff=STEADY)) as ref:
            await spec.ref.tell(Crash())
            await trio.testing.wait_all_tasks_blocked()
            assert await ref.ask(RemoveChild("b")) is True
            await trio.sleep(10)

            assert journal.count("start", "b") == 1

    async def test_name_can_be_reused(self, autojump_clock: trio.testing.MockClock) -> None:
        """After a removal the name is free for a new child."""
        journal = Journal()
        async with running(Supervisor([probe(journal, "b")])) as ref:
            await ref.ask(RemoveChild("b"))
            again = probe(journal, "b")
            await ref.ask(AddChild(again))

            assert await again.ref.ask(Get()) == 0
            assert journal.count("start", "b") == 2
