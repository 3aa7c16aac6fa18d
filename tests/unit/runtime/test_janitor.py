"""The janitor: rounds on its timer or on request, only while it leads."""

from __future__ import annotations

from typing import Any, assert_never

import trio
import trio.testing

from trellis_actors import Retention
from trellis_actors._time import Clock
from trellis_actors.actors import Actor, Ref
from trellis_actors.lifecycle import TaskStatus
from trellis_actors.runtime.janitor import Janitor
from trellis_actors.runtime.messages import Prune, Recover, Sweep, Swept, TryLead


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
