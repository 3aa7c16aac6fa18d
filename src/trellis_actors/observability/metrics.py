"""Prometheus metrics, fed by the runtime's lifecycle stream (the core knows nothing of them)."""

from __future__ import annotations

import collections
import re
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..http_check import NAME_PATTERN
from ..lifecycle import TaskStatus, Transition

if TYPE_CHECKING:
    from ..actors import ActorSnapshot
    from ..runtime.runtime import Runtime

_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_children: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], Any]] = weakref.WeakKeyDictionary()


def _child(metric: _Metric, *labels: str) -> _Metric:
    """``metric.labels(*labels)``, remembered: the client's own lookup validates its
    arguments and takes a lock each time, and the hot paths call this per transition and
    per request. (Only for metrics whose children are never removed.)"""
    known = _children.get(metric)
    if known is None:
        known = _children[metric] = {}
    child = known.get(labels)
    if child is None:
        child = known[labels] = metric.labels(*labels)
    return child


class _ActorCollector(Collector):
    """Restart counts and mailbox depths, and process pools' figures, read from the last
    tree snapshot."""

    def __init__(self) -> None:
        self.snapshot: ActorSnapshot | None = None

    def collect(self) -> Iterable[Any]:
        restarts = CounterMetricFamily(
            "trellis_actor_restarts", "Restarts of each actor by its supervisor", labels=["actor"]
        )
        depth = GaugeMetricFamily(
            "trellis_mailbox_depth", "Messages waiting in each actor's mailbox", labels=["actor"]
        )
        size = GaugeMetricFamily(
            "trellis_process_pool_size", "Worker processes of each process pool", labels=["actor"]
        )
        busy = GaugeMetricFamily(
            "trellis_process_pool_busy", "Pool processes running a job", labels=["actor"]
        )
        replaced = CounterMetricFamily(
            "trellis_process_pool_restarts",
            "Pool processes that died and were replaced",
            labels=["actor"],
        )
        if self.snapshot is not None:
            for actor in self.snapshot.walk():
                restarts.add_metric([actor.name], actor.restarts)
                if actor.mailbox is not None:
                    depth.add_metric([actor.name], actor.mailbox.length)
                if actor.kind == "processes" and actor.details is not None:
                    size.add_metric([actor.name], actor.details["processes"])
                    busy.add_metric([actor.name], actor.details["busy"])
                    replaced.add_metric([actor.name], actor.details["restarts"])
        yield from (restarts, depth, size, busy, replaced)


class _FireCollector(Collector):
    """Fires counted by schedule id, labelled by name at scrape time (names can change)."""

    def __init__(self) -> None:
        self.fires: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def collect(self) -> Iterable[Any]:
        family = CounterMetricFamily(
            "trellis_scheduler_fires", "Tasks created by schedules", labels=["schedule"]
        )
        for schedule_id, count in sorted(self.fires.items()):
            family.add_metric([self.names.get(schedule_id, schedule_id)], count)
        yield family


class _HandlerCollector(Collector):
    """Handler threads (busy, abandoned) and blocked-loop spells, read from the runtime."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def collect(self) -> Iterable[Any]:
        busy = GaugeMetricFamily(
            "trellis_threads_busy", "Threads running a def handler, abandoned ones included"
        )
        abandoned = GaugeMetricFamily(
            "trellis_threads_abandoned",
            "Handler threads still running after their attempt timed out or was cancelled",
        )
        blocked = CounterMetricFamily(
            "trellis_event_loop_blocked",
            "Times an async handler blocked the event loop past the threshold",
            labels=["task_type"],
        )
        runtime = self.runtime
        if runtime is not None:
            busy.add_metric([], runtime.threads.busy)
            abandoned.add_metric([], len(runtime.threads.abandoned()))
            for task_type, count in sorted(dict(runtime.loop_watch.blocked).items()):
                blocked.add_metric([task_type], count)
        yield busy
        yield abandoned
        yield blocked


class _CheckCollector(Collector):
    """The last outcome of each named ``http_check``; a name not checked for ``ttl``
    seconds is dropped, and so is the least recently checked beyond ``limit`` names."""

    def __init__(self, ttl: float, limit: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clock = clock
        #: name -> (up, latency in seconds or None, when), least recently checked first
        self.checks: collections.OrderedDict[str, tuple[float, float | None, float]] = (
            collections.OrderedDict()
        )

    def record(self, name: str, up: bool, latency: float | None) -> None:
        self.checks[name] = (1.0 if up else 0.0, latency, self.clock())
        self.checks.move_to_end(name)
        while len(self.checks) > self.limit:
            self.checks.popitem(last=False)
        self.expire()

    def expire(self) -> None:
        oldest = self.clock() - self.ttl
        while self.checks and next(iter(self.checks.values()))[2] < oldest:
            self.checks.popitem(last=False)

    def collect(self) -> Iterable[Any]:
        self.expire()
        up = GaugeMetricFamily(
            "trellis_http_check_up",
            "1 when the last http_check of a target passed",
            labels=["target"],
        )
        latency = GaugeMetricFamily(
            "trellis_http_check_latency_seconds",
            "Latency of the last http_check of a target",
            labels=["target"],
        )
        for name, (is_up, seconds, _) in sorted(self.checks.items()):
            up.add_metric([name], is_up)
            if seconds is not None:
                latency.add_metric([name], seconds)
        yield up
        yield latency


class _PerNode(Collector):
    """This node's own series, each labelled ``node`` with the node's id (once it is
    known), so that the series of several nodes add up (``sum``) instead of colliding."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner
        self.node: str | None = None

    def collect(self) -> Iterable[Metric]:
        node = self.node
        for family in self.inner.collect():
            if node is not None:
                family.samples = [
                    sample._replace(labels={"node": node, **sample.labels})
                    for sample in family.samples
                ]
            yield family


class NodeRegistry(CollectorRegistry):
    """A registry with the process (``process_*``) and Python (``python_*``) collectors, as
    the client's default one has, and without the ``*_created`` series of counters,
    histograms and summaries: a sample per series that says when the process started,
    which doubles what a scrape holds and is not graphed."""

    def __init__(self) -> None:
        super().__init__()
        ProcessCollector(registry=self)
        PlatformCollector(registry=self)
        GCCollector(registry=self)

    def collect(self) -> Iterator[Metric]:
        for family in super().collect():
            if family.type in _WITH_CREATED:
                created = family.name + "_created"
                family.samples = [s for s in family.samples if s.name != created]
            yield family


_WITH_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


class Metrics:
    """Every Trellis metric, in its own registry (a :class:`NodeRegistry`) or one you pass.

    ``observe`` takes batches of transitions; ``refresh`` reads the gauges that come from
    the store and the actor tree (so queue depths are right with several nodes); ``run``
    does the first for as long as the runtime runs.

    Every series but the store-wide ones is this node's own and carries a ``node`` label
    (``node=``, or else the runtime's node id, taken by ``run`` or ``refresh``): sum them
    across nodes. The store-wide gauges (``trellis_queue_depth``) have no ``node``
    label: every node exports the same figures, so aggregate them with ``max``.

    ``http_check`` outcomes are labelled with the check's ``name`` (its URL's host unless
    the payload names it); a name not checked for ``check_ttl`` seconds (an hour by
    default) leaves ``/metrics``, and at most ``check_limit`` names are kept. ``clock``
    (seconds, ``time.monotonic`` by default) times that expiry.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        check_ttl: float = 3600.0,
        check_limit: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        node: str | None = None,
    ) -> None:
        self.registry = registry if registry is not None else NodeRegistry()
        # This node's own series live in a registry of their own, exposed through one
        # collector that adds the node label; store-wide ones go straight to the registry.
        self._own = _PerNode(CollectorRegistry(auto_describe=True))
        self._own.node = node
        self.registry.register(self._own)
        r = self._own.inner
        self.tasks = Counter(
            "trellis_tasks",
            "Task transitions, by type and new status",
            ["type", "status"],
            registry=r,
        )
        self.failed = Counter(
            "trellis_tasks_failed", "Attempts that ended in an error", ["type"], registry=r
        )
        self.duration = Histogram(
            "trellis_task_duration_seconds",
            "Duration of task attempts",
            ["type"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "trellis_queue_depth",
            "Tasks per queue and status, in the whole store (the same on every node: "
            "aggregate with max)",
            ["queue", "status"],
            registry=self.registry,
        )
        self.worker_active = Gauge(
            "trellis_worker_active", "Workers running a task on this node", registry=r
        )
        self.workers = Gauge("trellis_workers", "Workers on this node", registry=r)
        self.http_requests = Counter(
            "trellis_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "trellis_http_request_duration_seconds",
            "HTTP request durations",
            ["method", "route"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self._actors = _ActorCollector()
        r.register(self._actors)
        self._fires = _FireCollector()
        r.register(self._fires)
        self._handlers = _HandlerCollector()
        r.register(self._handlers)
        self.checks = _CheckCollector(check_ttl, check_limit, clock)
        r.register(self.checks)

    def observe(self, batch: Iterable[Transition]) -> None:
        moved: collections.Counter[tuple[str, str]] = collections.Counter()
        for task, event in batch:
            status = event.to_status
            moved[(task.type, status.value)] += 1
            if event.from_status is TaskStatus.RUNNING and task.started_at is not None:
                seconds = max(0.0, event.at - task.started_at)
                _child(self.duration, task.type).observe(seconds)
                if status in (TaskStatus.RETRYING, TaskStatus.FAILED) and task.error is not None:
                    _child(self.failed, task.type).inc()
            if event.from_status is None and task.schedule_id is not None:
                fires = self._fires.fires
                fires[task.schedule_id] = fires.get(task.schedule_id, 0) + 1
            if status is TaskStatus.COMPLETED and task.type == "http_check":
                self._observe_check(task.result)
        for labels, count in moved.items():  # one increment per kind of move in a batch
            _child(self.tasks, *labels).inc(count)

    def _observe_check(self, result: Any) -> None:
        """Record a completed check under the name it reports (the payload's ``name``,
        checked at submit, or the URL's host): never the URL, which has no bound."""
        if not isinstance(result, dict):
            return
        name = result.get("name")
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            return
        latency = result.get("latency_ms")
        seconds = latency / 1000 if isinstance(latency, int | float) else None
        self.checks.record(name, bool(result.get("ok")), seconds)

    @property
    def node(self) -> str | None:
        """The node id on this node's own series (None: none yet)."""
        return self._own.node

    async def refresh(self, runtime: Runtime) -> None:
        """Read the gauges that are state rather than events (call before a scrape)."""
        if self._own.node is None:
            self._own.node = runtime.node
        counts = await runtime.counts()
        self.queue_depth.clear()
        for queue, statuses in counts.by_queue.items():
            for status, count in statuses.items():
                self.queue_depth.labels(queue, status).set(count)
        workers = await runtime.workers()
        self.worker_active.set(sum(1 for w in workers if w.current_task is not None))
        self.workers.set(await runtime.worker_count())
        self._actors.snapshot = runtime.snapshot()
        self._handlers.runtime = runtime
        self._fires.names = {s.id: s.name for s in await runtime.list_schedules()}

    async def run(
        self, runtime: Runtime, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Observe every transition of ``runtime`` until cancelled."""
        if self._own.node is None:
            self._own.node = runtime.node
        with runtime.observe(self.observe):
            task_status.started()
            await trio.sleep_forever()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        _child(self.http_requests, method, route, str(status)).inc()
        _child(self.http_duration, method, route).observe(seconds)
