"""The runtime's actor tree: which actors there are, how each is made, who talks to whom."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from .._time import Clock
from ..actors import ChildSpec, Ref, Strategy, Supervisor
from ..actors._supervisor import SupervisorMsg
from ..app import App
from ..errors import TrellisError
from ..lifecycle import Transition
from ..stores.base import Store
from .catalog import CatalogMsg, CatalogRegistry
from .config import RuntimeConfig
from .feed import Feed, Followers
from .janitor import Janitor
from .messages import FeedMsg, FeedWake, JanitorMsg, QueueMsg, SchedulerMsg, StoreMsg
from .node_actor import NodeActor, NodeConfig
from .node_messages import NodeMsg
from .processes import PoolMsg, ProcessPool
from .queue_actor import QueueActor, QueueConfig
from .scheduler import SchedulerActor
from .store_actor import Audience, StoreActor
from .threads import LoopWatch, ThreadPool
from .worker import Worker


@dataclass(frozen=True, slots=True)
class ActorTree:
    """The runtime's actors by role. Each ref is valid from the moment the tree is built,
    across restarts of the actor behind it."""

    registry: Ref[CatalogMsg]
    store: Ref[StoreMsg]
    feed: Ref[FeedMsg]  # every node's transitions, read from the store for followers
    queue: Ref[QueueMsg]
    scheduler: Ref[SchedulerMsg]
    janitor: Ref[JanitorMsg]
    workers: Ref[SupervisorMsg]  # the worker pool's supervisor
    processes: Ref[PoolMsg] | None  # the pool of executor="process" handlers, if any
    node: Ref[NodeMsg]  # the node's registry row and readiness checks


class Wiring:
    """Builds the supervision tree of one runtime::

        root (one_for_one) ─┬─ registry
                            ├─ store
                            ├─ feed (every node's transitions, for followers)
                            ├─ queue
                            ├─ janitor
                            ├─ scheduler
                            ├─ processes (the pool of executor="process" handlers, if any)
                            ├─ workers (one_for_one) ─┬─ worker-1 … worker-N
                            └─ node (the nodes registry's heartbeat, readiness checks)

    Besides the actors, one :class:`ThreadPool` runs every worker's ``def`` handlers and
    one :class:`LoopWatch` finds async handlers that block the loop.

    ``clock`` gives the running runtime's clock; actors are made (and read it) only while
    the runtime runs.
    """

    def __init__(
        self,
        app: App,
        store: Store,
        config: RuntimeConfig,
        node: str,
        audience: Audience,
        clock: Callable[[], Clock],
    ) -> None:
        self._app = app
        self._config = config
        self._node = node
        self._clock = clock
        self._worker_seq = 0
        self.threads = ThreadPool(config.thread_count)
        self.loop_watch = LoopWatch(config.blocked_loop_warning)
        limits = {t.name: t.concurrency for t in app if t.concurrency is not None}
        # Every claim keeps to the types' limits across the nodes sharing the store.
        store.set_limits({t.name: limit for t in app if (limit := t.limit()) is not None})
        registry = ChildSpec("registry", lambda: CatalogRegistry(app), mailbox_size=math.inf)
        store_spec = ChildSpec(
            "store",
            lambda: StoreActor(store, clock(), queue.ref, audience),
            mailbox_size=4096,
            shutdown_timeout=config.grace_period + 5,
        )
        #: The feed's followers, kept across restarts of the feed actor.
        self.followers = Followers()
        followers = self.followers
        feed = ChildSpec(
            "feed",
            lambda: Feed(store_spec.ref, followers, poll=config.poll_interval),
            mailbox_size=math.inf,  # woken with tell_nowait after every commit
        )
        audience.observers.append(_waking(feed.ref, followers))
        queue_config = QueueConfig(
            owner=node,
            queues=config.queues,
            lease=config.lease,
            claim_ahead=config.claim_ahead,
            prefetch=config.prefetch,
            poll_interval=config.poll_interval,
            concurrency=limits,
        )
        queue = ChildSpec(
            "queue",
            lambda: QueueActor(store_spec.ref, clock(), queue_config, registry.ref),
            mailbox_size=math.inf,  # workers report with tell_nowait: never refused
            shutdown_timeout=queue_config.stop_timeout + 1,
        )
        janitor = ChildSpec(
            "janitor",
            lambda: Janitor(
                store_spec.ref,
                clock(),
                interval=config.janitor_interval,
                retention=config.retention,
            ),
        )
        scheduler = ChildSpec(
            "scheduler",
            lambda: SchedulerActor(app, store_spec.ref, clock(), refresh=config.poll_interval * 5),
        )
        # The process pool starts its processes with it: only an app that has process
        # handlers gets one.
        processes = (
            ChildSpec(
                "processes",
                lambda: ProcessPool(config.processes),
                shutdown_timeout=config.grace_period + 5,
            )
            if any(task_type.executor == "process" for task_type in app)
            else None
        )
        self._queue = queue.ref
        self._store = store_spec.ref
        self._processes = None if processes is None else processes.ref
        worker_specs = [self.worker_spec() for _ in range(config.workers)]
        pool = ChildSpec(
            "workers",
            lambda: Supervisor(worker_specs, strategy=Strategy.ONE_FOR_ONE),
            mailbox_size=64,
            shutdown_timeout=config.grace_period + 5,
        )
        self._specs = [registry, store_spec, feed, queue, janitor, scheduler]
        if processes is not None:
            self._specs.append(processes)
        self._specs.append(pool)
        node_config = NodeConfig(
            node=node,
            heartbeat=config.heartbeat,
            queues=config.queues,
            processes=0 if processes is None else config.processes,
            checks=app.readiness_checks,
            check_interval=config.readiness_interval,
        )
        node_spec = ChildSpec(
            "node",
            lambda: NodeActor(store_spec.ref, queue.ref, pool.ref, clock(), node_config),
            shutdown_timeout=5.0,
        )
        self._specs.append(node_spec)
        self.tree = ActorTree(
            registry=registry.ref,
            store=store_spec.ref,
            feed=feed.ref,
            queue=queue.ref,
            scheduler=scheduler.ref,
            janitor=janitor.ref,
            workers=pool.ref,
            processes=self._processes,
            node=node_spec.ref,
        )

    def root(self) -> Supervisor:
        """The root supervisor, made afresh for each run (the specs, and so the refs and
        mailboxes, are the same)."""
        return Supervisor(self._specs, strategy=Strategy.ONE_FOR_ONE, registry=self.tree.registry)

    def worker_spec(self) -> ChildSpec:
        """A new worker slot: ``worker-1``, ``worker-2``, … (names are never reused)."""
        self._worker_seq += 1
        config, app, node, clock, queue = (
            self._config,
            self._app,
            self._node,
            self._clock,
            self._queue,
        )
        threads, loop_watch, processes = self.threads, self.loop_watch, self._processes
        store = self._store
        return ChildSpec(
            f"worker-{self._worker_seq}",
            lambda: Worker(
                app,
                owner=node,
                queue=queue,
                clock=clock(),
                reask=config.poll_interval * 30,
                threads=threads,
                loop_watch=loop_watch,
                processes=processes,
                store=store,
            ),
            shutdown_timeout=config.grace_period,
            idle_timeout=config.worker_idle_timeout,
            mailbox_size=math.inf,  # Assign and CancelTask come with tell_nowait
        )


def _waking(feed: Ref[FeedMsg], followers: Followers) -> Callable[[tuple[Transition, ...]], None]:
    """An observer of the store's batches that wakes the feed (a message, no wait) while
    anybody follows it: with no follower, a commit costs nothing more."""
    following = followers.followers

    def wake(batch: tuple[Transition, ...]) -> None:
        if not following:
            return
        with contextlib.suppress(TrellisError):  # stopping; its timer reads on anyway
            feed.tell_nowait(FeedWake())

    return wake
