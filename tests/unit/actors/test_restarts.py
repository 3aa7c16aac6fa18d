"""Restarts: backoff delays and their reset, and what survives a restart."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Add, Crash, Get, Journal, probe, running

from trellis_actors import Backoff, compute_backoff
from trellis_actors.actors import DEFAULT_RESTART_BACKOFF, ChildSpec, Intensity, Supervisor

LENIENT = Intensity(max_restarts=100, within=60)


async def crash_and_time(journal: Journal, spec: ChildSpec) -> float:
    """Crash the child now; return how long it stayed down."""
    crashed_at = trio.current_time()
    await spec.ref.tell(Crash())
    restarted_at = await journal.wait_for("start", spec.name, journal.count("start", spec.name) + 1)
    return restarted_at - crashed_at


class TestRestartBackoff:
    def test_default_policy(self) -> None:
        """Restarts back off from 50 ms to at most 5 s, with 20 % jitter."""
        assert Backoff(0.05, 5.0, 2.0, 0.2) == DEFAULT_RESTART_BACKOFF
        assert Supervisor().backoff == DEFAULT_RESTART_BACKOFF

    async def test_delays_grow_to_the_cap(self, autojump_clock: trio.testing.MockClock) -> None:
        """Back-to-back crashes wait 1, 2, 4, 8 then 8 s again."""
        journal = Journal()
        spec = probe(journal, "p")
        async with running(Supervisor([spec], intensity=LENIENT, backoff=STEADY)):
            delays = [await crash_and_time(journal, spec) for _ in range(5)]

        assert delays == pytest.approx([1, 2, 4, 8, 8])

    async def test_jitter(self, autojump_clock: trio.testing.MockClock) -> None:
        """Each delay is compute_backoff with the supervisor's next random draw."""
        policy = Backoff(initial=0.5, maximum=4.0, multiplier=3.0, jitter=0.5)
        journal = Journal()
        spec = probe(journal, "p")
        supervisor = Supervisor([spec], intensity=LENIENT, backoff=policy, rng=random.Random(1234))
        draws = random.Random(1234)
        async with running(supervisor):
            for attempt in range(1, 7):
                delay = await crash_and_time(journal, spec)

                assert delay == pytest.approx(compute_backoff(policy, attempt, draws.random()))
                base = min(policy.initial * policy.multiplier ** (attempt - 1), policy.maximum)
                assert (1 - policy.jitter) * base <= delay + 1e-9
                assert delay <= policy.maximum + 1e-9

    async def test_reset_after_a_stable_run(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child that ran for reset_after starts again from the first delay."""
        journal = Journal()
        spec = probe(journal, "p")
        supervisor = Supervisor([spec], intensity=LENIENT, backoff=STEADY, reset_after=10)
        async with running(supervisor):
            assert [await crash_and_time(journal, spec) for _ in range(3)] == pytest.approx(
                [1, 2, 4]
            )
            await trio.sleep(9.9)
            assert await crash_and_time(journal, spec) == pytest.approx(8)
            await trio.sleep(10)
            assert await crash_and_time(journal, spec) == pytest.approx(1)
            assert await crash_and_time(journal, spec) == pytest.approx(2)

    async def test_each_child_backs_off_alone(self, autojump_clock: trio.testing.MockClock) -> None:
        """One child's crashes do not lengthen another child's delays."""
        journal = Journal()
        a, b = probe(journal, "a"), probe(journal, "b")
        async with running(Supervisor([a, b], intensity=LENIENT, backoff=STEADY)):
            assert [await crash_and_time(journal, a) for _ in range(3)] == pytest.approx([1, 2, 4])
            assert await crash_and_time(journal, b) == pytest.approx(1)


class TestWhatSurvives:
    async def test_queued_messages(self, autojump_clock: trio.testing.MockClock) -> None:
        """Messages queued behind the crash are handled by the next incarnation."""
        journal = Journal()
        spec = probe(journal, "p")
        async with running(Supervisor([spec], backoff=STEADY)):
            spec.ref.tell_nowait(Add(100))
            spec.ref.tell_nowait(Crash())
            for n in (1, 2, 3):
                spec.ref.tell_nowait(Add(n))

            assert await spec.ref.ask(Get()) == 6
            assert journal.count("start", "p") == 2
            assert spec.ref.statistics().handled == 6

    async def test_not_the_message_in_flight(self, autojump_clock: trio.testing.MockClock) -> None:
        """The message being handled at the crash is not delivered again."""
        journal = Journal()
        spec = probe(journal, "p")
        supervisor = Supervisor([spec], backoff=STEADY)
        async with running(supervisor):
            await spec.ref.tell(Crash())
            await trio.sleep(60)

            assert journal.count("start", "p") == 2
            snap = supervisor.snapshot().find("p")
            assert snap is not None
            assert snap.restarts == 1

    async def test_ref_stays_valid(self, autojump_clock: trio.testing.MockClock) -> None:
        """One ref reaches every incarnation of its child."""
        journal = Journal()
        spec = probe(journal, "p")
        ref = spec.ref
        async with running(Supervisor([spec], intensity=LENIENT, backoff=STEADY)):
            for round_ in range(1, 4):
                await ref.tell(Add(round_))
                assert await ref.ask(Get()) == round_
                await ref.tell(Crash())

            assert await ref.ask(Get()) == 0
            assert journal.count("start", "p") == 4

    async def test_through_a_child_supervisor_restart(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A child supervisor rebuilt from the same specs keeps its children's refs and mail."""
        journal = Journal()
        leaf = probe(journal, "leaf")
        inner = ChildSpec(
            "inner", lambda: Supervisor([leaf], intensity=Intensity(0, 10), backoff=STEADY)
        )
        async with running(Supervisor([inner], backoff=STEADY)):
            await leaf.ref.tell(Crash())  # inner gives up; outer restarts it after 1 s
            await journal.wait_for("stop", "leaf")
            await leaf.ref.tell(Add(7))  # while no leaf runs at all

            assert await leaf.ref.ask(Get()) == 7
            assert journal.count("start", "leaf") == 2
