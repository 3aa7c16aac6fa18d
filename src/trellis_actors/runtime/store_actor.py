"""The store actor: the only owner of the store. Batches writes into group commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

import structlog
import trio

from .._time import Clock
from ..actors import Actor, Ref, Request
from ..actors._actor import _STOP
from ..errors import ActorCrashed, TaskNotFound, TrellisError
from ..lifecycle import TERMINAL, TaskStatus, Transition
from ..stores.base import ClaimRequest, Store, Work, WorkDone
from .messages import (
    AdvanceSchedule,
    Cancel,
    Claim,
    DeleteSchedule,
    Events,
    Finish,
    Get,
    GetCounts,
    GetSchedule,
    Heartbeat,
    ListSchedules,
    ListTasks,
    Ping,
    Progress,
    Promote,
    Prune,
    Purge,
    QueueMsg,
    Recover,
    Release,
    Requeue,
    SaveSchedule,
    StoreMsg,
    Submit,
    SubscribeEvents,
    TryLead,
    WaitFor,
    WorkReady,
)

log = structlog.get_logger("trellis.store")

#: At most this many messages are taken from the mailbox into one batch.
MAX_BATCH = 1024


@dataclass(slots=True)
class Audience:
    """Who waits on the store: event subscribers, and ``WaitFor`` requests whose task has
    not ended. The runtime keeps one across restarts of the store actor, as the slot keeps
    its mailbox: a crash of the store must not silence a subscription for ever."""

    subscribers: list[trio.MemorySendChannel[tuple[Transition, ...]]] = field(default_factory=list)
    waiters: dict[str, list[WaitFor]] = field(default_factory=dict)
    #: Called with every batch, in the store actor: quick, synchronous bookkeeping.
    observers: list[Callable[[tuple[Transition, ...]], None]] = field(default_factory=list)


class StoreActor(Actor[StoreMsg]):
    """Serialises every store call; concurrent submissions and outcomes share one commit.

    After each batch it publishes the transitions to subscribers, answers ``WaitFor``
    requests whose task has ended, and tells the queue when work became ready.
    """

    kind = "store"

    def __init__(
        self, store: Store, clock: Clock, queue: Ref[QueueMsg], audience: Audience | None = None
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._queue = queue
        audience = Audience() if audience is None else audience
        self._subscribers = audience.subscribers  # updated in place: they outlive us
        self._observers = audience.observers
        # A store whose calls may run at the same time (PostgreSQL: one pool connection
        # each) gets a batch's submissions, outcomes and claims side by side.
        self._side_by_side = bool(getattr(store, "concurrent_calls", False))
        self._waiters = audience.waiters

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[StoreMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            # Other nodes' work (PostgreSQL NOTIFY) nudges our queue too.
            await nursery.start(self._store.watch, self._nudge)
            task_status.started(self.ref)
            await self._serve()
            nursery.cancel_scope.cancel()

    def _nudge(self) -> None:
        _tell_quietly(self._queue.tell_nowait, WorkReady())

    async def _serve(self) -> None:
        mailbox = self.mailbox
        while (first := await self.receive()) is not _STOP:
            batch: list[StoreMsg] = [first]  # type: ignore[list-item]  # not _STOP
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(mailbox.get_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            try:
                # Progress is ordered with the outcomes around it (the final 1.0 lands
                # before the completion): a batch is handled in runs split at each one.
                start = 0
                for index, msg in enumerate(batch):
                    if isinstance(msg, Progress):
                        if index > start:
                            await self._handle_batch(batch[start:index])
                        await self._handle_batch([msg])
                        start = index + 1
                if start < len(batch):
                    await self._handle_batch(batch[start:])
            except BaseException as exc:
                _fail_pending(batch, exc)
                raise

    async def _handle_batch(self, batch: list[StoreMsg]) -> None:
        now = self._clock.now()
        submits = [msg for msg in batch if isinstance(msg, Submit)]
        claims = [msg for msg in batch if isinstance(msg, Claim)]
        work = Work(
            tasks=[new for msg in submits for new in msg.tasks],
            outcomes=[out for msg in batch if isinstance(msg, Finish) for out in msg.outcomes],
            claims=[
                ClaimRequest(msg.queues, msg.limit, msg.owner, msg.lease_until, msg.exclude)
                for msg in claims
            ],
        )
        rest = [msg for msg in batch if not isinstance(msg, Submit | Finish | Claim)]
        if self._side_by_side:
            done = await self._apply_side_by_side(work, now)
        elif work.tasks or work.outcomes or work.claims:
            done = await self._store.apply(work, now)  # one commit for all three
        else:
            done = WorkDone([], [], [], [])
        start = 0
        for request in submits:
            request.reply.send(done.submitted[start : start + len(request.tasks)])
            start += len(request.tasks)
        moves = done.arrived + done.finished
        for msg in batch:
            if isinstance(msg, Finish):
                msg.reply.send(None)  # committed (a stopping queue waits for this)
        for claim, claimed in zip(claims, done.claimed, strict=True):
            claim.reply.send(claimed)
        await self._handle_each(rest, now, moves)
        if moves:
            await self._publish(moves)

    async def _apply_side_by_side(self, work: Work, now: float) -> WorkDone:
        """New rows, rows this node holds, rows nobody holds (claims skip locked rows): no
        two of these calls touch the same row, so on a store whose calls may run at the
        same time (PostgreSQL: a pool connection each) they run side by side, and one
        waits on the database while another works."""
        store = self._store
        done = WorkDone([], [], [], [[] for _ in work.claims])

        async def enqueue() -> None:
            done.submitted[:], done.arrived[:] = await store.enqueue(work.tasks, now)

        async def finish() -> None:
            done.finished[:] = await store.finish(work.outcomes, now)

        async def claim(index: int) -> None:
            c = work.claims[index]
            done.claimed[index] = await store.claim(
                c.queues, c.limit, c.owner, c.lease_until, now, c.exclude
            )

        async with trio.open_nursery() as nursery:
            if work.tasks:
                nursery.start_soon(enqueue)
            if work.outcomes:
                nursery.start_soon(finish)
            for index in range(len(work.claims)):
                nursery.start_soon(claim, index)
        return done

    async def _handle_each(
        self, batch: Sequence[StoreMsg], now: float, moves: list[Transition]
    ) -> None:
        for msg in batch:
            try:
                moves.extend(await self._handle_one(msg, now))
            except TrellisError as exc:
                if isinstance(msg, Request):
                    msg.reply.fail(exc)

    async def _handle_one(self, msg: StoreMsg, now: float) -> list[Transition]:
        store = self._store
        match msg:
            case Promote():
                moves = await store.promote_due(now, MAX_BATCH)
                msg.reply.send(await store.next_due_at())
                return moves
            case Progress(task_id, fraction, message):
                await store.set_progress(task_id, fraction, message, now)
                return []
            case Heartbeat(task_ids, owner, lease_until):
                msg.reply.send(await store.heartbeat(task_ids, owner, lease_until))
                return []
            case Release(task_ids, owner):
                moves = await store.release(task_ids, owner, now)
                msg.reply.send(len(moves))
                return moves
            case Recover():
                moves = await store.recover_expired(now)
                msg.reply.send(sum(1 for m in moves if m.event.from_status is TaskStatus.RUNNING))
                return moves
            case Prune(completed_before, dead_before):
                msg.reply.send(await store.prune(completed_before, dead_before))
                return []
            case Purge(task_ids):
                msg.reply.send(await store.purge(task_ids))
                return []
            case Cancel(task_id):
                move = await store.cancel(task_id, now)
                msg.reply.send(move)
                return [move]
            case Requeue(task_id):
                move = await store.requeue(task_id, now)
                msg.reply.send(move)
                return [move]
            case Get(task_id):
                msg.reply.send(await store.get(task_id))
                return []
            case ListTasks(filter, limit, cursor):
                msg.reply.send(await store.list_tasks(filter, limit, cursor))
                return []
            case Events(task_id):
                msg.reply.send(await store.events(task_id))
                return []
            case GetCounts():
                msg.reply.send(await store.counts())
                return []
            case Ping():
                msg.reply.send(await store.ping())
                return []
            case WaitFor(task_id):
                task = await store.get(task_id)
                if task is None:
                    raise TaskNotFound(f"no task with id {task_id!r}")
                if task.status in TERMINAL:
                    msg.reply.send(task)
                else:
                    self._waiters.setdefault(task_id, []).append(msg)
                return []
            case SubscribeEvents(channel):
                self._subscribers.append(channel)
                msg.reply.send(None)
                return []
            case SaveSchedule(schedule):
                msg.reply.send(await store.save_schedule(schedule))
                return []
            case GetSchedule(schedule_id):
                msg.reply.send(await store.get_schedule(schedule_id))
                return []
            case ListSchedules():
                msg.reply.send(await store.list_schedules())
                return []
            case DeleteSchedule(schedule_id):
                msg.reply.send(await store.delete_schedule(schedule_id))
                return []
            case AdvanceSchedule(schedule_id, expected, next_run_at, fired_at):
                advanced = await store.advance_schedule(
                    schedule_id, expected, next_run_at, fired_at
                )
                msg.reply.send(advanced)
                return []
            case TryLead(name):
                msg.reply.send(await store.try_lead(name))
                return []
            case Submit() | Finish() | Claim():
                raise AssertionError("batched above")
            case _:
                assert_never(msg)

    async def _publish(self, moves: list[Transition]) -> None:
        batch = tuple(moves)
        for observer in self._observers:
            try:
                observer(batch)
            except Exception:  # an observer's bug must not stop the store
                log.exception("an event observer failed", observer=repr(observer))
        live = []
        for channel in self._subscribers:
            try:
                channel.send_nowait(batch)
            except trio.WouldBlock:
                log.warning("event subscriber is too slow; a batch was dropped", size=len(batch))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            live.append(channel)
        self._subscribers[:] = live

        ready = False
        due: float | None = None
        waiters = self._waiters
        following = [move.task.id for move in batch[1:]]
        following.append("")
        for (task, _), next_id in zip(batch, following, strict=True):
            if next_id == task.id:
                continue  # the task moved again at once (arrived and queued; failed, dead)
            status = task.status
            if status is TaskStatus.QUEUED:
                ready = True
            elif status is TaskStatus.PENDING or status is TaskStatus.RETRYING:
                # A later move in this batch may have queued it since: an early nudge
                # costs the queue one look at the store, nothing more.
                if due is None or task.run_at < due:
                    due = task.run_at
            elif waiters and status in TERMINAL and task.id in waiters:
                for waiter in waiters.pop(task.id):
                    waiter.reply.send(task)
        if ready or due is not None:
            _tell_quietly(self._queue.tell_nowait, WorkReady(due))


def _tell_quietly(send: Callable[[Any], None], msg: Any) -> None:
    """The queue also polls, so a nudge it cannot take now is not lost work."""
    try:
        send(msg)
    except TrellisError:
        log.debug("queue did not take a nudge", msg=type(msg).__name__)


def _fail_pending(batch: list[StoreMsg], exc: BaseException) -> None:
    for msg in batch:
        if isinstance(msg, Request) and not msg.reply.is_set:
            crashed = ActorCrashed(f"the store failed: {exc!r}")
            crashed.__cause__ = exc
            msg.reply.fail(crashed)
