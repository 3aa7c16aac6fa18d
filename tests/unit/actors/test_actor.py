"""The actor base class and child specs."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import Add, Crash, Exit, Get, Hold, Journal, Probe, Stall

from trellis_actors.actors import Actor, ChildSpec, RestartType
from trellis_actors.errors import ActorStopped


class TestChildSpec:
    def test_ref_exists_before_start(self) -> None:
        """A spec's ref is usable before its actor runs; messages wait in its mailbox."""
        spec = ChildSpec("p", lambda: Probe(Journal()), mailbox_size=4)
        spec.ref.tell_nowait(Add())

        assert spec.ref.name == "p"
        assert spec.ref.mailbox is spec.mailbox
        assert spec.mailbox.statistics().length == 1
        assert repr(spec) == "<ChildSpec p permanent>"

    def test_defaults(self) -> None:
        """Permanent, 5 s to shut down, no watchdog, 128 messages."""
        spec = ChildSpec("p", lambda: Probe(Journal()))

        assert spec.restart is RestartType.PERMANENT
        assert spec.shutdown_timeout == 5.0
        assert spec.idle_timeout is None
        assert spec.mailbox.capacity == 128

    def test_restart_from_string(self) -> None:
        """The restart type may be given by its value."""
        spec = ChildSpec("p", lambda: Probe(Journal()), restart="transient")  # type: ignore[arg-type]

        assert spec.restart is RestartType.TRANSIENT

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"name": ""}, "a child needs a non-empty name"),
            ({"shutdown_timeout": -1}, "shutdown_timeout must be >= 0"),
            ({"idle_timeout": 0}, r"idle_timeout must be > 0 \(or None"),
            ({"mailbox_size": -1}, "mailbox capacity must be a whole number"),
        ],
    )
    def test_rejects_bad_options(self, options: dict[str, object], message: str) -> None:
        """Bad options are refused when the spec is made, naming the rule."""
        kwargs: dict[str, object] = {"name": "p", "factory": lambda: Probe(Journal())}
        kwargs.update(options)
        with pytest.raises(ValueError, match=message):
            ChildSpec(**kwargs)  # type: ignore[arg-type]


class TestActor:
    async def test_runs_without_a_supervisor(self) -> None:
        """An actor started on its own gets an unbounded slot named after its kind."""
        journal = Journal()
        actor = Probe(journal)
        async with trio.open_nursery() as nursery:
            ref = await nursery.start(actor.run)
            await ref.tell(Add(4))

            assert await ref.ask(Get()) == 4
            assert ref is actor.ref
            assert actor.name == "probe"
            assert actor.mailbox.capacity == math.inf
            actor.request_stop()

        assert journal.order("stop") == ["probe"]

    async def test_stop_while_idle(self) -> None:
        """request_stop ends an actor waiting on an empty mailbox."""
        actor = Probe(Journal())
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.testing.wait_all_tasks_blocked()
            assert actor.mailbox.waiting
            actor.request_stop()

        assert not actor.mailbox.waiting

    async def test_stop_while_busy(self) -> None:
        """A stop requested mid-message ends the loop after that message; the rest wait."""
        actor = Probe(Journal())
        release = trio.Event()
        async with trio.open_nursery() as nursery:
            ref = await nursery.start(actor.run)
            await ref.tell(Hold(release))
            await ref.tell(Add())
            await trio.testing.wait_all_tasks_blocked()
            actor.request_stop()
            release.set()

        assert actor.mailbox.statistics().length == 1  # left for the next incarnation

    async def test_clean_exit(self) -> None:
        """An actor may end itself by requesting its own stop."""
        actor = Probe(Journal())
        async with trio.open_nursery() as nursery:
            ref = await nursery.start(actor.run)
            await ref.tell(Exit())

        assert actor.stop_requested.is_set()

    async def test_crash_propagates(self) -> None:
        """An error from handle escapes run, for the supervisor to see."""
        actor = Probe(Journal())
        actor.ref.tell_nowait(Crash("broken"))

        with pytest.raises(RuntimeError, match="broken"):
            await actor.run()

    async def test_cancelled_while_answering(self) -> None:
        """An asker whose actor is cancelled mid-request gets ActorStopped."""
        actor = Probe(Journal())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_run_until_blocked, actor)
            with pytest.raises(ActorStopped, match=r"^probe stopped before answering$"):
                await actor.ref.ask(Stall())

    async def test_handle_is_required(self) -> None:
        """An actor without handle says what to implement."""
        actor: Actor[int] = Actor()
        actor.ref.tell_nowait(1)

        with pytest.raises(NotImplementedError, match=r"Actor must implement handle\(\)"):
            await actor.run()

    async def test_alive_marks_liveness(self, autojump_clock: trio.testing.MockClock) -> None:
        """alive() stamps the mailbox with the current time for the watchdog."""
        actor = Probe(Journal())
        await trio.sleep(7)
        actor.alive()

        assert actor.mailbox.last_alive == 7
        assert actor.child_snapshots() == ()


async def _run_until_blocked(actor: Probe) -> None:
    """Run ``actor`` until every task is blocked, then cancel it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
