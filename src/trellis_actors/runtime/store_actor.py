"""The store actor: the only owner of the store. Batches writes into group commits.

It also rides out store outages (see :mod:`.store_failures`). While the store is down,
what needs it is refused at once with :class:`~trellis_actors.errors.StoreUnavailable`,
outcomes are kept to be written later, and the store is probed with a capped exponential
backoff; once it answers, the kept outcomes are written and everything goes on. Nothing
about an outage is raised out of the actor: restart intensity is for faults.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, assert_never

import structlog
import trio

from .._backoff import Backoff, compute_backoff
from .._time import Clock
from ..actors import Actor, Ref, Request, one_error
from ..decisions import NEVER
from ..errors import ActorCrashed, StoreUnavailable, TaskNotFound, TrellisError, ValidationError
from ..lifecycle import TERMINAL, Task, TaskStatus, Transition
from ..stores.base import ClaimRequest, NewTask, Outcome, Store, Work, WorkDone
from . import node_messages, session_messages
from .messages import (
    AdvanceSchedule,
    BulkChunk,
    Cancel,
    Claim,
    Claimed,
    DeleteSchedule,
    Demand,
    Events,
    EventsAfter,
    Finish,
    FinishedSince,
    Get,
    GetCounts,
    GetSchedule,
    Heartbeat,
    HeldBack,
    LastEventId,
    ListQueues,
    ListSchedules,
    ListTasks,
    LoadWorkflow,
    PauseQueue,
    Ping,
    Probe,
    Progress,
    Promote,
    Prune,
    Published,
    Purge,
    QueueMsg,
    Recover,
    Release,
    Requeue,
    SaveSchedule,
    Signal,
    StoreMsg,
    Submit,
    SubscribeEvents,
    TryLead,
    Unsubscribed,
    WaitFor,
    WorkReady,
)
from .node_messages import ForgetNode, ListNodes, NodeBeat
from .session_messages import EndSession, GetSession, PruneSessions, SaveSession, TouchSession
from .store_failures import Failure, classify

log = structlog.get_logger("trellis.store")

#: At most this many messages are taken from the mailbox into one batch.
MAX_BATCH = 1024
#: Waits between probes of a store that is down (the n-th after n failed tries).
PROBE_BACKOFF = Backoff(initial=0.1, maximum=5.0, multiplier=2.0, jitter=0.2)
#: Most outcomes kept while the store is down. Workers only finish tasks claimed before
#: the outage, so this is a guard, not a limit met in practice; beyond it the oldest are
#: dropped, and their tasks run again once their leases expire.
MAX_KEPT = 100_000

#: Requests made by the runtime itself: their data is not a caller's to correct.
_INTERNAL = (Claim, Promote, Heartbeat, Release, Recover, Prune, AdvanceSchedule, TryLead)

# The parts of a batch's write that can fail apart: new tasks, outcomes, claim number i.
_TASKS = "tasks"
_OUTCOMES = "outcomes"


#: Why a subscriber was dropped.
TOO_SLOW = "too slow: it fell a whole buffer of batches behind; subscribe again"


def _one_slot_left(channel: trio.MemorySendChannel[Published]) -> bool:
    stats = channel.statistics()
    return stats.current_buffer_used + 1 >= stats.max_buffer_size


@dataclass(slots=True)
class Audience:
    """Who waits on the store: event subscribers, and ``WaitFor`` requests whose task has
    not ended. The runtime keeps one across restarts of the store actor, as the slot keeps
    its mailbox: a crash of the store must not silence a subscription for ever."""

    subscribers: list[trio.MemorySendChannel[Published]] = field(default_factory=list)
    waiters: dict[str, list[WaitFor]] = field(default_factory=dict)
    #: Called with every batch, in the store actor: quick, synchronous bookkeeping.
    observers: list[Callable[[tuple[Transition, ...]], None]] = field(default_factory=list)
    #: The worker that ran each task whose outcome is in the batch being written: task id
    #: -> worker name, for the observers (logs); cleared once the batch is published.
    ran_by: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Outage:
    since: float  # trio time
    error: BaseException  # the driver's error that began it, or the latest one
    retry_at: float  # trio time of the next probe
    probing: bool = False  # a probe is under way: a ping, then the kept outcomes' write


class StoreActor(Actor[StoreMsg]):
    """Serialises every store call; concurrent submissions and outcomes share one commit.

    After each batch it publishes the transitions to subscribers, answers ``WaitFor``
    requests whose task has ended, and tells the queue when work became ready. A batch
    whose write fails for another reason than an outage is tried again part by part, so
    that only the requests at fault fail.

    The queue keeps it told of its standing demand (``Demand``: the claim it would make
    for its idle workers, which found nothing). A batch that stores new due tasks runs
    that claim in the same commit and tells the queue what it took (``Claimed``): a task
    submitted to an idle node is claimed without another round trip through the store.
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
        self._ran_by = audience.ran_by
        # A store whose calls may run at the same time (PostgreSQL: one pool connection
        # each) gets a batch's submissions, outcomes and claims side by side.
        self._side_by_side = bool(getattr(store, "concurrent_calls", False))
        self._waiters = audience.waiters
        self._outage: _Outage | None = None
        self._failures = 0  # tries in a row that met an outage: the backoff's attempt
        self._kept: list[Outcome] = []  # outcomes to write once the store is back
        self._probe = self.timer(Probe)
        self._rng = random.Random()
        self._nursery: trio.Nursery | None = None
        self._demand: Demand | None = None  # the queue's standing demand, as last told

    async def run(
        self, *, task_status: trio.TaskStatus[Ref[StoreMsg]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with one_error():
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # Other nodes' work (PostgreSQL NOTIFY) nudges our queue too.
                await nursery.start(self._store.watch, self._nudge)
                nursery.start_soon(self._probe.run)
                task_status.started(self.ref)
                if self._side_by_side:
                    await self._overlapped()
                else:
                    async for batch in self.batches(MAX_BATCH):
                        if batch := self._take_demands(batch):
                            await self._handle_in_runs(batch)
                await self._last_words()
                nursery.cancel_scope.cancel()

    async def _handle_in_runs(self, batch: list[StoreMsg]) -> None:
        # Progress is ordered with the outcomes around it (the final 1.0 lands before the
        # completion): a batch is handled in runs split at each progress report.
        start = 0
        for index, msg in enumerate(batch):
            if isinstance(msg, Progress):
                if index > start:
                    await self._handle_batch(batch[start:index])
                await self._handle_batch([msg])
                start = index + 1
        if start < len(batch):
            await self._handle_batch(batch[start:])

    async def _overlapped(self) -> None:
        """The loop on a store whose calls may run at the same time: a batch of only new
        tasks does not wait for the batch being written (new rows touch nothing it writes,
        and nobody can ask about them before the reply), so a submission to an idle node
        does not queue behind the last task's outcome. Every other batch waits for the one
        before it, as in the plain loop. Returns once every write has ended."""
        turn = trio.Semaphore(1)  # held by the batch in order being handled

        async def in_order(batch: list[StoreMsg]) -> None:
            try:
                await self._handle_in_runs(batch)
            finally:
                turn.release()

        async with trio.open_nursery() as writes:
            async for received in self.batches(MAX_BATCH):
                if not (batch := self._take_demands(received)):
                    continue
                if self._outage is None and all(isinstance(msg, Submit) for msg in batch):
                    writes.start_soon(self._handle_batch, batch)
                    continue
                await turn.acquire()
                writes.start_soon(in_order, batch)

    def _take_demands(self, batch: list[StoreMsg]) -> list[StoreMsg]:
        """Take in the queue's standing demand (the latest replaces the others; it needs
        no store): the rest of ``batch``."""
        if not any(type(msg) is Demand for msg in batch):
            return batch
        for msg in batch:
            if type(msg) is Demand:
                self._demand = msg
        return [msg for msg in batch if type(msg) is not Demand]

    def _nudge(self) -> None:
        _tell_quietly(self._queue.tell_nowait, WorkReady())

    async def _handle_batch(self, batch: list[StoreMsg]) -> None:
        moves: list[Transition] = []
        covered = 0  # the leading moves whose ready tasks the queue's demand saw
        for msg in batch:
            if isinstance(msg, Finish):
                self._ran_by.update((o.task_id, o.worker) for o in msg.outcomes if o.worker)
        try:
            if self._outage is not None and not await self._back(batch, moves):
                return
            now = self._clock.now()
            submits = [msg for msg in batch if isinstance(msg, Submit)]
            claims = [msg for msg in batch if isinstance(msg, Claim)]
            outcomes = [out for msg in batch if isinstance(msg, Finish) for out in msg.outcomes]
            rest = [msg for msg in batch if not isinstance(msg, Submit | Finish | Claim)]
            if submits or outcomes or claims:
                covered = await self._write(submits, outcomes, claims, now, moves)
            for msg in batch:
                if isinstance(msg, Finish) and not msg.reply.is_set:
                    msg.reply.send(None)  # written or kept: a stopping queue waits for this
            await self._handle_each(rest, now, moves)
        except BaseException as exc:
            _fail_pending(batch, exc)  # a fault: the actor crashes
            raise
        finally:
            if moves:
                self._publish(moves, covered)

    async def _write(
        self,
        submits: list[Submit],
        outcomes: list[Outcome],
        claims: list[Claim],
        now: float,
        moves: list[Transition],
    ) -> int:
        """The hot path: a batch's submissions, outcomes and claims in one commit (or, on
        a store whose calls may run at the same time, side by side). With new due tasks,
        the queue's standing demand is one more claim, after the others.

        Returns how many leading ``moves`` that claim saw: if it took less than it asked,
        the ready tasks among them are all claimed or out of this node's reach. New tasks
        of none of the demand's queues need no claim: they are out of reach already."""
        tasks = [new for msg in submits for new in msg.tasks]
        requests = [_claim_request(msg) for msg in claims]
        handoff = self._handoff(tasks, requests, now)
        if handoff is not None:
            requests.append(handoff)
        elsewhere = self._elsewhere(tasks)  # as the demand stood when the claims were made
        work = Work(tasks=tasks, outcomes=outcomes, claims=requests)
        errors: dict[str | int, Exception]
        if self._side_by_side:
            done, errors = await self._apply_side_by_side(work, now, handoff is not None)
        else:
            try:
                done = await self._store.apply(work, now)  # one commit for all three
                errors = {}
            except Exception as exc:  # nothing was written: each part failed
                done = WorkDone([], [], [], [])
                errors = {_TASKS: exc, _OUTCOMES: exc} | dict.fromkeys(range(len(requests)), exc)
        covered = arrived = 0
        if _TASKS not in errors:
            start = 0
            for request in submits:
                request.reply.send(done.submitted[start : start + len(request.tasks)])
                start += len(request.tasks)
            moves += done.arrived
            covered = arrived = len(moves)
        if _OUTCOMES not in errors:
            moves += done.finished
            if not self._side_by_side:
                covered = len(moves)  # finished in the same transaction, before the claims
        for index, claim in enumerate(claims):
            if index not in errors:
                _answer_claim(claim, done.claimed[index], moves)
        if elsewhere:
            covered = arrived  # no new task is for this node's queues: no nudge for them
        elif handoff is None or len(claims) in errors:
            covered = 0  # not claimed (a failed handoff is not tried again: the nudge is)
            if handoff is not None:
                self._unreserve(handoff, 0)
        elif not await self._hand_over(done.claimed[len(claims)], handoff, now, moves):
            covered = 0
        if errors:
            await self._retry_apart(errors, submits, outcomes, claims, now, moves)
        elif work.tasks or work.outcomes:
            self._failures = 0  # the store took a write: a later outage starts afresh
        if requests:
            self._held_back()
        return covered

    def _held_back(self) -> None:
        """After a claim: if a rate limit held tasks back, the queue claims again when
        the window lets one start (a timer, not the next poll)."""
        until = self._store.held_until
        if until is not None:
            _tell_quietly(self._queue.tell_nowait, HeldBack(until))

    def _handoff(
        self, tasks: list[NewTask], claims: list[ClaimRequest], now: float
    ) -> ClaimRequest | None:
        """The queue's standing demand as a claim, if ``tasks`` may meet it: some are due
        now, and the queue is not claiming for itself in this batch."""
        demand = self._demand
        if demand is None or demand.limit <= 0 or not tasks:
            return None
        if any(claim.owner == demand.owner for claim in claims):
            return None
        if all(new.run_at is not None and new.run_at > now for new in tasks):
            return None
        if self._elsewhere(tasks):
            return None  # a claim would find nothing (see _elsewhere)
        lease_until = now + demand.lease
        # Reserved now, before any await: on a store whose batches overlap, two batches
        # must not both claim for the same idle workers (_hand_over gives back the rest).
        self._demand = replace(demand, limit=0)
        return ClaimRequest(demand.queues, demand.limit, demand.owner, lease_until, demand.exclude)

    def _elsewhere(self, tasks: list[NewTask]) -> bool:
        """Whether none of ``tasks`` is for the queues of the standing demand (a node that
        submits work for other nodes' queues). The demand stands because nothing stored
        is for those queues, so a claim in their commit would find nothing, and the queue
        needs no nudge for them either."""
        demand = self._demand
        if demand is None or demand.limit <= 0 or demand.queues is None or not tasks:
            return False
        queues = demand.queues
        return all(new.queue not in queues for new in tasks)

    def _unreserve(self, handoff: ClaimRequest, taken: int) -> None:
        """What a handoff reserved and did not take is wanted still (a newer Demand from
        the queue, if one came meanwhile, replaced the reservation: it counts as sent)."""
        demand = self._demand
        unused = handoff.limit - taken
        if demand is not None and demand.owner == handoff.owner and unused > 0:
            self._demand = replace(demand, limit=demand.limit + unused)

    async def _hand_over(
        self, tasks: list[Task], handoff: ClaimRequest, now: float, moves: list[Transition]
    ) -> bool:
        """Tell the queue what its standing demand claimed, as if it had claimed it; True
        if the claim took less than it asked (nothing more is ready for the queue)."""
        self._unreserve(handoff, len(tasks))
        if tasks:
            try:
                self._queue.tell_nowait(Claimed(tuple(tasks)))
            except TrellisError:  # the queue is stopping or full: the tasks go back now
                ids = [task.id for task in tasks]
                try:
                    moves += await self._store.release(ids, handoff.owner, now)
                except Exception as exc:
                    log.warning("could not give back claimed tasks", error=repr(exc))
                return False
        return len(tasks) < handoff.limit

    async def _apply_side_by_side(
        self, work: Work, now: float, handoff: bool
    ) -> tuple[WorkDone, dict[str | int, Exception]]:
        """New rows, rows this node holds, rows nobody holds (claims skip locked rows): no
        two of these calls touch the same row, so on a store whose calls may run at the
        same time (PostgreSQL: a pool connection each) they run side by side, and one
        waits on the database while another works. Each commits (or fails) on its own:
        the errors are returned by part. With ``handoff``, the last claim is the queue's
        standing demand: it runs in the new rows' transaction, after their insert."""
        store = self._store
        done = WorkDone([], [], [], [[] for _ in work.claims])
        errors: dict[str | int, Exception] = {}
        last = len(work.claims) - 1

        async def enqueue() -> None:
            try:
                if handoff:
                    both = await store.apply(Work(work.tasks, (), work.claims[last:]), now)
                    done.submitted[:], done.arrived[:] = both.submitted, both.arrived
                    done.claimed[last] = both.claimed[0]
                else:
                    done.submitted[:], done.arrived[:] = await store.enqueue(work.tasks, now)
            except Exception as exc:
                errors[_TASKS] = exc
                if handoff:
                    errors[last] = exc

        async def finish() -> None:
            try:
                done.finished[:] = await store.finish(work.outcomes, now)
            except Exception as exc:
                errors[_OUTCOMES] = exc

        async def claim(index: int) -> None:
            try:
                c = work.claims[index]
                done.claimed[index] = await store.claim(
                    c.queues, c.limit, c.owner, c.lease_until, now, c.exclude
                )
            except Exception as exc:
                errors[index] = exc

        async with trio.open_nursery() as nursery:
            if work.tasks:
                nursery.start_soon(enqueue)
            if work.outcomes:
                nursery.start_soon(finish)
            for index in range(last if handoff else len(work.claims)):
                nursery.start_soon(claim, index)
        return done, errors

    # -- a failed write, part by part ---------------------------------------------------
    async def _retry_apart(
        self,
        errors: dict[str | int, Exception],
        submits: list[Submit],
        outcomes: list[Outcome],
        claims: list[Claim],
        now: float,
        moves: list[Transition],
    ) -> None:
        """The parts whose write failed, again one request at a time (the outcomes
        together, then one by one), so that one bad submission fails alone. After an
        outage nothing is tried again: requests are refused and outcomes kept."""
        for exc in errors.values():
            if classify(exc) is Failure.FAULT:
                raise exc
        for exc in errors.values():
            if classify(exc) is Failure.OUTAGE:
                self._went_down(exc)
                break
        if _TASKS in errors:
            for request in submits:
                await self._submit_alone(request, now, moves)
        if _OUTCOMES in errors:
            await self._finish(outcomes, now, moves)
        for index, claim in enumerate(claims):
            if index in errors:
                await self._claim_alone(claim, now, moves)

    async def _submit_alone(self, request: Submit, now: float, moves: list[Transition]) -> None:
        if self._outage is not None:
            request.reply.fail(self._unavailable())
            return
        try:
            submitted, arrived = await self._store.enqueue(request.tasks, now)
        except Exception as exc:
            self._failed(request, exc)
            return
        request.reply.send(submitted)
        moves += arrived

    async def _claim_alone(self, claim: Claim, now: float, moves: list[Transition]) -> None:
        if self._outage is not None:
            claim.reply.fail(self._unavailable())
            return
        try:
            c = _claim_request(claim)
            claimed = await self._store.claim(
                c.queues, c.limit, c.owner, c.lease_until, now, c.exclude
            )
        except Exception as exc:
            self._failed(claim, exc)
            return
        _answer_claim(claim, claimed, moves)
        self._held_back()

    async def _finish(
        self, outcomes: Sequence[Outcome], now: float, moves: list[Transition]
    ) -> None:
        """Write ``outcomes``: together, else one by one. Kept while the store is down
        (unless this is the probe that sees whether it is back); one the store refuses is
        dropped with an error logged (its task runs again once its lease expires)."""
        if not outcomes:
            return
        if self._outage is not None and not self._outage.probing:
            self._keep(outcomes)
            return
        try:
            moves += await self._store.finish(outcomes, now)
            return
        except Exception as exc:
            failure = classify(exc)
            if failure is Failure.FAULT:
                raise
            if failure is Failure.OUTAGE:
                self._went_down(exc)
                self._keep(outcomes)
                return
            if len(outcomes) == 1:
                log.error(
                    "the store refused an outcome; the task runs again once its lease expires",
                    task_id=outcomes[0].task_id,
                    error=repr(exc),
                )
                return
        for outcome in outcomes:
            await self._finish([outcome], now, moves)

    def _failed(self, msg: StoreMsg, exc: Exception) -> None:
        """Answer ``msg`` with what its store call raised; a fault is raised on."""
        failure = classify(exc)
        error: Exception
        match failure:
            case Failure.FAULT:
                raise exc
            case Failure.REFUSED:
                error = exc
            case Failure.OUTAGE:
                self._went_down(exc)
                error = self._unavailable()
            case Failure.BAD_DATA if isinstance(msg, _INTERNAL):
                # Not a caller's data (the queue's, the janitor's, rows read back): the
                # asker treats it as a failed store call.
                error = ActorCrashed(f"the store failed on {type(msg).__name__}: {_reason(exc)}")
                error.__cause__ = exc
            case Failure.BAD_DATA:
                error = ValidationError(
                    f"the store refused the data ({_reason(exc)}); nothing was stored or "
                    "changed: correct it and try again"
                )
                error.__cause__ = exc
            case _:
                assert_never(failure)
        if isinstance(msg, Request):
            msg.reply.fail(error)
        elif failure is not Failure.REFUSED:
            log.warning("a store call failed", msg=type(msg).__name__, error=repr(exc))

    # -- outages ------------------------------------------------------------------------
    def _went_down(self, exc: BaseException) -> None:
        """The store is down (or still is): refuse what needs it until the next probe."""
        self._failures += 1
        delay = compute_backoff(PROBE_BACKOFF, self._failures, self._rng.random())
        now = trio.current_time()
        outage = self._outage
        if outage is None:
            log.error(
                "the store is unavailable; refusing requests that need it until it answers",
                error=_reason(exc),
                probe_in=round(delay, 3),
            )
            self._outage = _Outage(since=now, error=exc, retry_at=now + delay)
        else:
            log.warning(
                "the store is still unavailable",
                error=_reason(exc),
                down_for=round(now - outage.since, 3),
                probe_in=round(delay, 3),
            )
            outage.error, outage.retry_at, outage.probing = exc, now + delay, False
        self._probe.at(now + delay)

    def _unavailable(self) -> StoreUnavailable:
        outage = self._outage
        assert outage is not None, "only while the store is down"
        wait = max(0.0, outage.retry_at - trio.current_time())
        error = StoreUnavailable(
            f"the store is unavailable ({_reason(outage.error)}); nothing was done: "
            f"retry in {max(1, math.ceil(wait))} s",
            retry_after=wait,
        )
        error.__cause__ = outage.error
        return error

    async def _back(self, batch: list[StoreMsg], moves: list[Transition]) -> bool:
        """While the store is down: True if it is back (the batch is then served as
        usual), else the batch is answered without the store."""
        if await self._probed(batch, moves):
            return True
        for msg in batch:
            self._refuse(msg)
        outage = self._outage
        assert outage is not None
        if not outage.probing and trio.current_time() >= outage.retry_at:
            # Time to probe: the timer's message, or any message after its time (the
            # timer does not send into a full mailbox). Beside the mailbox, so that what
            # comes meanwhile is still answered at once.
            outage.probing = True
            assert self._nursery is not None
            self._nursery.start_soon(self._ping)
        return False

    async def _probed(self, batch: list[StoreMsg], moves: list[Transition]) -> bool:
        """Take in the answer of the probe under way, if ``batch`` has it: True if the
        store is back. The outcomes kept meanwhile are written first: a store that
        answers a ping but cannot write (a full disk) is still down."""
        outage = self._outage
        assert outage is not None
        if not outage.probing:
            return False
        answers = [msg.answered for msg in batch if type(msg) is Probe]
        if True not in answers:
            if False in answers:
                self._went_down(outage.error)
            return False
        kept, self._kept = self._kept, []
        if kept:
            await self._finish(kept, self._clock.now(), moves)  # tried: we are probing
            if not outage.probing:
                return False  # down still (_went_down took it in)
        log.info(
            "the store answers again",
            down_for=round(trio.current_time() - outage.since, 3),
            kept_outcomes=len(kept),
        )
        self._outage = None
        if kept:
            self._failures = 0  # it took a write: a later outage starts afresh
        self._probe.stop()
        self._nudge()  # the queue claims what waited
        return True

    def _refuse(self, msg: StoreMsg) -> None:
        """Answer ``msg`` without the store, which is down."""
        match msg:
            case Finish(outcomes):
                self._keep(outcomes)
                msg.reply.send(None)
            case Progress() | Probe():
                pass  # a progress report is not worth keeping
            case Ping() | TryLead():
                msg.reply.send(False)  # nobody leads through a store that is down
            case SubscribeEvents(channel):
                self._subscribers.append(channel)
                msg.reply.send(None)
            case Demand():
                pass  # taken in before (see _take_demands)
            case _:
                msg.reply.fail(self._unavailable())

    async def _ping(self) -> None:
        try:
            answered = await self._store.ping()
        except Exception as exc:  # the SQL stores answer False; another store may raise
            log.debug("the store's ping failed", error=repr(exc))
            answered = False
        with contextlib.suppress(TrellisError):  # we are stopping
            await self.ref.tell(Probe(answered))

    def _keep(self, outcomes: Sequence[Outcome]) -> None:
        self._kept.extend(outcomes)
        if len(self._kept) > MAX_KEPT:
            dropped = len(self._kept) - MAX_KEPT
            del self._kept[:dropped]
            log.error(
                "too many outcomes kept while the store is down; the oldest were dropped "
                "and their tasks run again once their leases expire",
                dropped=dropped,
            )

    async def _last_words(self) -> None:
        """Stopping: write what was kept, if the store is back by now."""
        if not self._kept:
            return
        self._outage = None  # one last try
        kept, self._kept = self._kept, []
        moves: list[Transition] = []
        try:
            await self._finish(kept, self._clock.now(), moves)
        finally:
            if moves:
                self._publish(moves)
        if self._kept:
            log.error(
                "the store is unavailable at shutdown: outcomes were not written; their "
                "tasks run again once their leases expire",
                outcomes=len(self._kept),
            )

    # -- the rest, one at a time --------------------------------------------------------
    async def _handle_each(
        self, batch: Sequence[StoreMsg], now: float, moves: list[Transition]
    ) -> None:
        for msg in batch:
            if self._outage is not None:
                self._refuse(msg)
                continue
            try:
                moves.extend(await self._handle_one(msg, now))
            except Exception as exc:
                self._failed(msg, exc)

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
            case Prune(cutoffs, limit):
                msg.reply.send(await store.prune(cutoffs, limit))
                return []
            case BulkChunk(step):
                done = await store.bulk(step, now)
                msg.reply.send(done)
                return done.moves
            case Purge(task_ids):
                msg.reply.send(await store.purge(task_ids))
                return []
            case Cancel(task_id):
                moves = await store.cancel(task_id, now)
                msg.reply.send(moves)
                return moves
            case LoadWorkflow(workflow_id):
                msg.reply.send(await store.workflow(workflow_id))
                return []
            case Signal(workflow_id, name, payload):
                moves = await store.signal(workflow_id, name, payload, now)
                msg.reply.send(None)
                return moves
            case Requeue(task_id):
                move = await store.requeue(task_id, now)
                msg.reply.send(move)
                return [move]
            case Get(task_id):
                msg.reply.send(await store.get(task_id))
                return []
            case ListTasks(filter, limit, cursor, include, max_bytes):
                msg.reply.send(await store.list_tasks(filter, limit, cursor, include, max_bytes))
                return []
            case Events(task_id):
                msg.reply.send(await store.events(task_id))
                return []
            case FinishedSince(since, limit):
                msg.reply.send(await store.finished_since(since, limit))
                return []
            case GetCounts():
                msg.reply.send(await store.counts())
                return []
            case PauseQueue(name, paused):
                msg.reply.send(await store.pause_queue(name, paused, now))
                if not paused:
                    self._nudge()  # what waited in it is claimable again
                return []
            case ListQueues():
                msg.reply.send(await store.queue_states())
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
            case EventsAfter(after, limit):
                msg.reply.send(await store.events_after(after, limit))
                return []
            case LastEventId():
                msg.reply.send(await store.last_event_id())
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
            case Probe():
                return []  # a probe's answer that came after the store did
            case Submit() | Finish() | Claim() | Demand():
                raise AssertionError("batched or taken in above")
            case SaveSession() | GetSession() | TouchSession() | EndSession() | PruneSessions():
                await session_messages.answer(store, msg)
                return []
            case NodeBeat() | ListNodes() | ForgetNode():
                await node_messages.answer(store, msg)
                return []
            case _:
                assert_never(msg)

    def _publish(self, moves: list[Transition], covered: int = 0) -> None:
        """Tell subscribers, observers and waiters, and nudge the queue, of ``moves``;
        a task queued by one of the first ``covered`` needs no nudge (see ``_write``)."""
        batch = tuple(moves)
        for observer in self._observers:
            try:
                observer(batch)
            except Exception:  # an observer's bug must not stop the store
                log.exception("an event observer failed", observer=repr(observer))
        self._ran_by.clear()
        live = []
        for channel in self._subscribers:
            try:
                if _one_slot_left(channel):  # it has fallen a whole buffer behind: drop it
                    log.warning("an event subscriber fell a whole buffer behind; dropped it")
                    channel.send_nowait(Unsubscribed(TOO_SLOW))
                    channel.close()
                    continue
                channel.send_nowait(batch)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            live.append(channel)
        self._subscribers[:] = live

        ready = False
        due: float | None = None
        waiters = self._waiters
        following = [move.task.id for move in batch[1:]]
        following.append("")
        for index, ((task, _), next_id) in enumerate(zip(batch, following, strict=True)):
            if next_id == task.id:
                continue  # the task moved again at once (arrived and queued; failed, dead)
            status = task.status
            if status is TaskStatus.QUEUED:
                ready = ready or index >= covered
            elif (
                status is TaskStatus.PENDING
                or status is TaskStatus.RETRYING
                or (status is TaskStatus.WAITING and task.run_at < NEVER)
            ):
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


def _claim_request(claim: Claim) -> ClaimRequest:
    return ClaimRequest(claim.queues, claim.limit, claim.owner, claim.lease_until, claim.exclude)


def _answer_claim(claim: Claim, claimed: list[Task], moves: list[Transition]) -> None:
    claim.reply.send(claimed)  # leased, still queued: no move to publish


def _reason(exc: BaseException) -> str:
    """The first line of a driver's error, for messages and logs."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _fail_pending(batch: list[StoreMsg], exc: BaseException) -> None:
    for msg in batch:
        if isinstance(msg, Request) and not msg.reply.is_set:
            crashed = ActorCrashed(f"the store failed: {exc!r}")
            crashed.__cause__ = exc
            msg.reply.fail(crashed)
