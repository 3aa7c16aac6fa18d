"""The event feed: every node's transitions, read from the store's log, for followers.

The store records every transition of every node with an event id. The feed reads on
from each follower's last id (``EventsAfter``) and sends what it read to the follower's
channel, so that a follower that resumes after an id gets exactly what came after it,
whichever node wrote it. It reads when this node's store actor has committed (a
:class:`FeedWake` told from the store's observers) and at each tick of its timer (the
commits of other nodes sharing the store).

A follower is never sent more than its channel holds: one that reads slowly is read for
again once it has room, from where it stands (what it has not read yet stays in the store).
Followers whose reader is gone are forgotten.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, assert_never

import structlog
import trio

from ..actors import Actor, Ref
from ..errors import TrellisError
from ..lifecycle import Recorded
from .messages import (
    EventsAfter,
    FeedBatch,
    FeedMsg,
    FeedTick,
    FeedWake,
    Follow,
    LastEventId,
    StoreMsg,
)

log = structlog.get_logger("trellis.feed")

#: Events read for one follower (or several at the same point) in one store call.
PAGE = 500


@dataclass(slots=True)
class Follower:
    """A follower's channel and the id of the last event it was sent."""

    channel: trio.MemorySendChannel[FeedBatch]
    after: int

    @property
    def gone(self) -> bool:
        return self.channel.statistics().open_receive_channels == 0

    @property
    def has_room(self) -> bool:
        stats = self.channel.statistics()
        return stats.current_buffer_used < stats.max_buffer_size


@dataclass(slots=True)
class Followers:
    """The feed's followers. The runtime keeps one across restarts of the feed actor, as
    the slot keeps its mailbox: a crash of the feed must not silence a follower for ever."""

    followers: list[Follower] = field(default_factory=list)

    def close(self) -> None:
        """End every follower's stream (the runtime stops)."""
        for follower in self.followers:
            follower.channel.close()
        self.followers.clear()


class Feed(Actor[FeedMsg]):
    """Reads the store's log of transitions on behalf of its followers (see the module)."""

    kind = "feed"

    def __init__(
        self, store: Ref[StoreMsg], followers: Followers, *, poll: float, page: int = PAGE
    ) -> None:
        super().__init__()
        if page < 1:
            raise ValueError("page must be at least 1 event")
        self._store = store
        self._followers = followers.followers  # updated in place: they outlive us
        self._page = page
        # Followers from now on: placed where the log ends, asked before the next round.
        self._starting: list[tuple[Follow, trio.MemorySendChannel[FeedBatch]]] = []
        self.timer(FeedTick, every=poll)

    async def handle(self, msg: FeedMsg) -> None:
        self._take(msg)
        # Every message waiting now is taken before one round of reads: a burst of
        # commits costs one read per follower position, not one per commit.
        for waiting in self.leftovers():
            self._take(waiting)
        # A Follow taken among the leftovers waits in _starting: it too needs the round.
        if self._starting or self._followers:
            await self._round()

    def _take(self, msg: FeedMsg) -> None:
        match msg:
            case Follow(channel, after):
                self._follow(msg, channel, after)
            case FeedWake() | FeedTick():
                pass  # a round follows
            case _:
                assert_never(msg)

    def _follow(
        self, msg: Follow, channel: trio.MemorySendChannel[FeedBatch], after: int | None
    ) -> None:
        if after is not None:
            self._followers.append(Follower(channel, after))
            msg.reply.send(after)
            return
        self._starting.append((msg, channel))

    async def _round(self) -> None:
        """Send every follower with room what was recorded after its last event."""
        if self._starting:
            starting, self._starting = self._starting, []
            try:
                last = await self._store.ask(LastEventId())
            except TrellisError as exc:
                for msg, _ in starting:
                    msg.reply.fail(exc)
                return
            for msg, channel in starting:
                self._followers.append(Follower(channel, last))
                msg.reply.send(last)
        self._followers[:] = [f for f in self._followers if not f.gone]
        at: dict[int, list[Follower]] = {}
        for follower in self._followers:
            if follower.has_room:
                at.setdefault(follower.after, []).append(follower)
        more = False
        for after, followers in at.items():
            try:
                read = await self._store.ask(EventsAfter(after, self._page))
            except TrellisError as exc:  # the store is down: the next round tries again
                log.debug("the event feed could not read the store", error=str(exc))
                return
            if read:
                self._send(followers, read)
                more = more or len(read) == self._page
        if more:  # a full page: there may be more to read at once
            with contextlib.suppress(TrellisError):  # stopping
                self.ref.tell_nowait(FeedWake())

    def _send(self, followers: list[Follower], read: list[Recorded]) -> None:
        batch = tuple(read)
        last = read[-1].id
        for follower in followers:
            try:
                follower.channel.send_nowait(batch)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                continue  # it had room a moment ago; gone ones are forgotten next round
            follower.after = last

    def details(self) -> dict[str, Any]:
        return {"followers": len(self._followers)}
