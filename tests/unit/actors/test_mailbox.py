"""Mailboxes, replies and refs: statistics, backpressure, tell and ask."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import Add, Explode, Get, Hold, Ignore, Journal, probe, running

from trellis_actors.actors import Mailbox, MailboxStatistics, Reply, Supervisor
from trellis_actors.errors import ActorCrashed, ActorStopped, AskTimeout, MailboxFull


class TestMailbox:
    def test_statistics(self) -> None:
        """Length, capacity, sent and handled count what went in and out."""
        mailbox: Mailbox[int] = Mailbox(4)
        for n in range(3):
            mailbox.put_nowait(n)
        assert mailbox.get_nowait() == 0

        assert mailbox.statistics() == MailboxStatistics(
            length=2, capacity=4, sent=3, handled=1, blocked_seconds=0.0
        )
        assert len(mailbox) == 2

    @pytest.mark.parametrize("capacity", [-1, 1.5])
    def test_capacity_must_be_whole(self, capacity: float) -> None:
        """A negative or fractional capacity is refused."""
        with pytest.raises(ValueError, match=r"whole number >= 0, got "):
            Mailbox(capacity)

    def test_unbounded(self) -> None:
        """An infinite capacity never fills up."""
        mailbox: Mailbox[int] = Mailbox(math.inf)
        for n in range(1000):
            mailbox.put_nowait(n)

        assert mailbox.statistics().length == 1000

    def test_put_nowait_when_full(self) -> None:
        """put_nowait on a full mailbox raises MailboxFull and counts nothing."""
        mailbox: Mailbox[int] = Mailbox(2)
        mailbox.put_nowait(1)
        mailbox.put_nowait(2)

        with pytest.raises(MailboxFull, match=r"mailbox is full \(2 messages\)"):
            mailbox.put_nowait(3)
        assert mailbox.statistics().sent == 2

    async def test_put_blocks_when_full(self, autojump_clock: trio.testing.MockClock) -> None:
        """put waits for room, and the wait shows in blocked_seconds."""
        mailbox: Mailbox[int] = Mailbox(1)
        await mailbox.put(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(mailbox.put, 2)
            await trio.sleep(2.5)
            assert len(mailbox) == 1  # the second put is still waiting
            assert mailbox.get_nowait() == 1

        assert mailbox.get_nowait() == 2
        assert mailbox.statistics().blocked_seconds == pytest.approx(2.5)
        assert mailbox.statistics().sent == 2

    async def test_cancelled_put_delivers_nothing(self) -> None:
        """A put cancelled before it starts leaves the mailbox as it was."""
        mailbox: Mailbox[int] = Mailbox(4)
        with trio.CancelScope() as scope:
            scope.cancel()
            await mailbox.put(1)

        assert scope.cancelled_caught
        assert mailbox.statistics() == MailboxStatistics(0, 4, 0, 0, 0.0)

    async def test_close_fails_waiting_requests(self) -> None:
        """Closing fails every queued request with ActorStopped."""
        mailbox: Mailbox[Get] = Mailbox(4)
        request = Get()
        mailbox.put_nowait(request)
        mailbox.close()

        assert mailbox.closed
        with pytest.raises(ActorStopped, match="stopped before answering"):
            await request.reply.wait()

    async def test_put_after_close(self) -> None:
        """Sending to a closed mailbox raises ActorStopped."""
        mailbox: Mailbox[int] = Mailbox(4)
        mailbox.close()

        with pytest.raises(ActorStopped, match="mailbox is closed"):
            await mailbox.put(1)
        with pytest.raises(ActorStopped, match="mailbox is closed"):
            mailbox.put_nowait(1)

    async def test_close_wakes_blocked_sender(self) -> None:
        """A sender waiting on a full mailbox gets ActorStopped when it closes."""
        mailbox: Mailbox[int] = Mailbox(0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_close_when_blocked, mailbox)
            with pytest.raises(ActorStopped, match="mailbox is closed"):
                await mailbox.put(1)


class TestReply:
    async def test_first_answer_counts(self) -> None:
        """Only the first send or fail is kept."""
        reply: Reply[int] = Reply()
        reply.send(1)
        reply.send(2)
        reply.fail(RuntimeError("late"))

        assert reply.is_set
        assert await reply.wait() == 1

    async def test_fail(self) -> None:
        """A failed reply raises its error in the waiter."""
        reply: Reply[int] = Reply()
        reply.fail(KeyError("gone"))

        with pytest.raises(KeyError, match="gone"):
            await reply.wait()

    def test_result_before_the_answer(self) -> None:
        """Reading an unanswered reply is a usage error."""
        with pytest.raises(RuntimeError, match="has not been answered yet"):
            Reply[int]().result()

    def test_each_request_has_its_own_reply(self) -> None:
        """Requests get a fresh reply slot, which takes no part in equality."""
        first, second = Get(), Get()

        assert first.reply is not second.reply
        assert first == second


class TestRef:
    async def test_tell_and_ask(self, autojump_clock: trio.testing.MockClock) -> None:
        """tell delivers in order and ask returns the actor's answer."""
        spec = probe(Journal(), "p")
        async with running(Supervisor([spec])):
            await spec.ref.tell(Add(2))
            spec.ref.tell_nowait(Add(3))

            assert await spec.ref.ask(Get()) == 5
        assert repr(spec.ref) == "<Ref p>"

    async def test_ask_timeout(self, autojump_clock: trio.testing.MockClock) -> None:
        """An unanswered ask raises AskTimeout, a TimeoutError, after exactly its timeout."""
        spec = probe(Journal(), "slow")
        async with running(Supervisor([spec])):
            started = trio.current_time()
            with pytest.raises(AskTimeout, match=r"^slow did not answer Ignore within 1.5s; "):
                await spec.ref.ask(Ignore(), timeout=1.5)

            assert trio.current_time() - started == pytest.approx(1.5)
        assert issubclass(AskTimeout, TimeoutError)

    async def test_ask_timeout_covers_a_full_mailbox(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The timeout bounds the whole ask, waiting for mailbox room included."""
        spec = probe(Journal(), "busy", mailbox_size=1)
        release = trio.Event()
        async with running(Supervisor([spec])):
            await spec.ref.tell(Hold(release))
            await spec.ref.tell(Add())  # the mailbox is now full
            started = trio.current_time()
            with trio.fail_after(60), pytest.raises(AskTimeout, match="within 2s"):
                await spec.ref.ask(Get(), timeout=2)

            assert trio.current_time() - started == pytest.approx(2)
            release.set()

    async def test_ask_without_timeout(self, autojump_clock: trio.testing.MockClock) -> None:
        """timeout=None waits as long as it takes."""
        spec = probe(Journal(), "p")
        async with running(Supervisor([spec])):
            assert await spec.ref.ask(Get(), timeout=None) == 0

    async def test_crash_while_answering(self, autojump_clock: trio.testing.MockClock) -> None:
        """An actor that crashes on a request fails the asker at once with ActorCrashed."""
        spec = probe(Journal(), "p")
        async with running(Supervisor([spec])):
            asked = trio.current_time()
            with pytest.raises(ActorCrashed, match=r"^p crashed handling Explode$") as info:
                await spec.ref.ask(Explode("asked to crash"), timeout=30)

            assert trio.current_time() == asked  # promptly, not at the timeout
            assert isinstance(info.value.__cause__, RuntimeError)
            assert str(info.value.__cause__) == "asked to crash"

    async def test_blocked_tell(self, autojump_clock: trio.testing.MockClock) -> None:
        """tell waits while the mailbox is full; the wait shows in blocked_seconds."""
        spec = probe(Journal(), "p", mailbox_size=2)
        release = trio.Event()
        async with running(Supervisor([spec])):
            await spec.ref.tell(Hold(release))
            await spec.ref.tell(Add())
            await spec.ref.tell(Add())
            with pytest.raises(MailboxFull):
                spec.ref.tell_nowait(Add())
            async with trio.open_nursery() as nursery:
                nursery.start_soon(spec.ref.tell, Add())
                await trio.sleep(3)
                assert spec.ref.statistics().sent == 3  # the fourth tell is still waiting
                release.set()

            stats = spec.ref.statistics()
            assert stats.blocked_seconds == pytest.approx(3)
            assert await spec.ref.ask(Get()) == 3
            assert spec.ref.statistics().sent == 5

    async def test_statistics(self, autojump_clock: trio.testing.MockClock) -> None:
        """A ref reports its mailbox: length, capacity, sent and handled."""
        spec = probe(Journal(), "p", mailbox_size=8)
        release = trio.Event()
        async with running(Supervisor([spec])):
            await spec.ref.tell(Hold(release))
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                await spec.ref.tell(Add())

            assert spec.ref.statistics() == MailboxStatistics(
                length=3, capacity=8, sent=4, handled=1, blocked_seconds=0.0
            )
            release.set()
            await spec.ref.ask(Get())
            assert spec.ref.statistics().handled == 5
            assert spec.ref.mailbox is spec.mailbox


async def _close_when_blocked(mailbox: Mailbox[int]) -> None:
    await trio.testing.wait_all_tasks_blocked()
    mailbox.close()
