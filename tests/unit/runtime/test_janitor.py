"""The janitor: rounds on its timer or on request, only while it leads."""

from __future__ import annotations

from typing import Any, assert_never

import pytest
import trio
import trio.testing

from trellis_actors import Retention
from trellis_actors._time import Clock
from trellis_actors.actors import Actor, Ref
from trellis_actors.lifecycle import TaskStatus
from trellis_actors.runtime.janitor import Janitor
from trellis_actors.runtime.messages import Prune, Recover, Sweep, Swept, TryLead
from trellis_actors.stores.base import BULK_CHUNK


class FakeStore(Actor[TryLead | Recover | Prune]):
    """Answers the janitor's questions and records them with their trio time."""

    kind = "store"

    def __init__(self, *, leads: bool = True, expired: int = 0, old: int = 0) -> None:
        super().__init__()
        self.leads = leads
        self.expired = expired
        self.old = old
        self.seen: list[tuple[float, Any]] = []

    async def handle(self, msg: TryLead | Recover | Prune) -> None:
        self.seen.append((trio.current_time(), msg))
        match msg:
            case TryLead():
                msg.reply.send(self.leads)
            case Recover():
                msg.reply.send(self.expired)
            case Prune():
                msg.reply.send(self.old)
            case _:
                assert_never(msg)


def janitor(store: FakeStore, retention: Retention | None = None) -> Janitor:
    ref: Ref[Any] = store.ref
    return Janitor(ref, Clock(), interval=10.0, retention=retention or Retention())


class TestJanitor:
    async def test_rounds_on_its_timer(self, autojump_clock: trio.testing.MockClock) -> None:
        """Every interval the leader recovers expired leases; nothing to prune, no Prune."""
        store = FakeStore(expired=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            start = trio.current_time()
            actor = janitor(store)
            await nursery.start(actor.run)
            await trio.sleep(25)
            actor.request_stop()
            store.request_stop()

        asked = [(at - start, type(msg).__name__) for at, msg in store.seen]
        assert asked == [
            (10.0, "TryLead"),
            (10.0, "Recover"),
            (20.0, "TryLead"),
            (20.0, "Recover"),
        ]

    async def test_sweep_replies_with_the_round(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Sweep does a round at once and says what it recovered and pruned."""
        store = FakeStore(expired=3, old=5)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            actor = janitor(store, Retention(completed=60.0, dead=None))
            ref = await nursery.start(actor.run)
            swept = await ref.ask(Sweep())
            actor.request_stop()
            store.request_stop()

        assert swept == Swept(led=True, recovered=3, pruned=5)
        (prune,) = [msg for _, msg in store.seen if isinstance(msg, Prune)]
        assert set(prune.cutoffs) == {TaskStatus.COMPLETED}

    async def test_follower_does_nothing(self, autojump_clock: trio.testing.MockClock) -> None:
        """A node that does not lead neither recovers nor prunes."""
        store = FakeStore(leads=False, expired=3, old=5)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            actor = janitor(store, Retention(completed=60.0, dead=60.0))
            ref = await nursery.start(actor.run)
            swept = await ref.ask(Sweep())
            await trio.sleep(15)
            actor.request_stop()
            store.request_stop()

        assert swept == Swept(led=False)
        assert {type(msg) for _, msg in store.seen} == {TryLead}


class ChunkedStore(FakeStore):
    """Has ``left`` old tasks; each Prune deletes up to its limit of them."""

    def __init__(self, left: int) -> None:
        super().__init__()
        self.left = left

    async def handle(self, msg: TryLead | Recover | Prune) -> None:
        if isinstance(msg, Prune):
            self.seen.append((trio.current_time(), msg))
            deleted = min(self.left, msg.limit)
            self.left -= deleted
            msg.reply.send(deleted)
        else:
            await super().handle(msg)


class TestRetentionRounds:
    async def test_prunes_chunk_by_chunk_until_a_chunk_is_not_full(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """One Prune per chunk (one store commit each), every status with its cutoff."""
        store = ChunkedStore(left=2 * BULK_CHUNK + 7)
        retention = Retention(completed=60.0, failed=120.0, dead=None, cancelled=0.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            ref = await nursery.start(janitor(store, retention).run)
            now = Clock().now()
            swept = await ref.ask(Sweep())
            nursery.cancel_scope.cancel()

        assert swept == Swept(led=True, recovered=0, pruned=2 * BULK_CHUNK + 7)
        prunes = [msg for _, msg in store.seen if isinstance(msg, Prune)]
        assert [msg.limit for msg in prunes] == [BULK_CHUNK] * 3
        assert prunes[0].cutoffs == {
            TaskStatus.COMPLETED: now - 60.0,
            TaskStatus.FAILED: now - 120.0,
            TaskStatus.CANCELLED: now,
        }

    def test_a_negative_retention_is_refused(self) -> None:
        with pytest.raises(ValueError, match="retention of failed tasks must be >= 0"):
            Retention(failed=-1.0)
