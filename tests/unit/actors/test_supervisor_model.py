"""A model-based test: random crashes, exits and waits against one supervisor.

Each run builds a supervisor over three probes with drawn restart types, strategy,
intensity, reset time and backoff, then drives it in virtual time. After every step the
supervisor must agree with a small model of the OTP rules: who was restarted, after which
delay, how often, and whether the supervisor gave up.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st
from tests.unit.actors.kit import Crash, Exit, Journal, guard, probe

from trellis_actors import Backoff, compute_backoff
from trellis_actors.actors import (
    ChildSpec,
    Intensity,
    RestartType,
    Strategy,
    Supervisor,
    WhichChildren,
)
from trellis_actors.errors import SupervisorEscalation

NAMES = ("a", "b", "c")
Op = tuple[Literal["crash", "exit"], int] | tuple[Literal["wait"], float]


@dataclass(frozen=True)
class Plan:
    strategy: Strategy
    restarts: tuple[RestartType, ...]
    intensity: Intensity
    reset_after: float
    backoff: Backoff
    seed: int
    ops: tuple[Op, ...]


plans = st.builds(
    Plan,
    strategy=st.sampled_from(Strategy),
    restarts=st.tuples(*[st.sampled_from(RestartType)] * len(NAMES)),
    intensity=st.builds(Intensity, st.integers(0, 5), st.sampled_from([1.0, 5.0, 20.0, 60.0])),
    reset_after=st.sampled_from([0.5, 3.0, 10.0, 1000.0]),
    backoff=st.builds(
        Backoff,
        initial=st.floats(0.01, 2.0),
        maximum=st.floats(0.5, 10.0),
        multiplier=st.floats(1.0, 4.0),
        jitter=st.floats(0.0, 1.0),
    ),
    seed=st.integers(0, 2**32),
    ops=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["crash", "crash", "exit"]), st.integers(0, len(NAMES) - 1)),
            st.tuples(st.just("wait"), st.sampled_from([0.25, 2.0, 7.5, 30.0])),
        ),
        min_size=3,
        max_size=25,
    ).map(tuple),
)


@dataclass
class Model:
    """What the OTP rules say the supervisor's children should look like."""

    plan: Plan
    order: list[str] = field(default_factory=lambda: list(NAMES))
    running: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(NAMES, True))
    restarts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    started_at: dict[str, float] = field(default_factory=lambda: dict.fromkeys(NAMES, 0.0))
    recent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)

    def restart_type(self, name: str) -> RestartType:
        return self.plan.restarts[NAMES.index(name)]

    def gives_up(self, now: float) -> bool:
        """Count one restart at ``now``; True when that exceeds the intensity."""
        self.recent.append(now)
        while self.recent and self.recent[0] <= now - self.plan.intensity.within:
            self.recent.popleft()
        return len(self.recent) > self.plan.intensity.max_restarts

    def delay(self, name: str, now: float) -> float:
        if now - self.started_at[name] >= self.plan.reset_after:
            self.failures[name] = 0
        self.failures[name] += 1
        return compute_backoff(self.plan.backoff, self.failures[name], self.rng.random())

    def affected(self, name: str) -> list[str]:
        match self.plan.strategy:
            case Strategy.ONE_FOR_ONE:
                return [name]
            case Strategy.ONE_FOR_ALL:
                return list(self.order)
            case Strategy.REST_FOR_ONE:
                return self.order[self.order.index(name) :]


class Escalated(Exception):
    """The supervisor gave up, as the model said it would."""


async def drive(plan: Plan) -> None:
    journal = Journal()
    specs = {
        name: probe(journal, name, restart=restart)
        for name, restart in zip(NAMES, plan.restarts, strict=True)
    }
    supervisor = Supervisor(
        list(specs.values()),
        strategy=plan.strategy,
        intensity=plan.intensity,
        backoff=plan.backoff,
        reset_after=plan.reset_after,
        rng=random.Random(plan.seed),
    )
    model = Model(plan)
    outcome: list[BaseException] = []
    ended = trio.Event()

    async def supervise(task_status: trio.TaskStatus[None]) -> None:
        try:
            await supervisor.run(task_status=task_status)
        except SupervisorEscalation as exc:
            outcome.append(exc)
        finally:
            ended.set()

    with guard():
        async with trio.open_nursery() as nursery:
            await nursery.start(supervise)
            try:
                for op in plan.ops:
                    await step(op, model, journal, specs, ended, outcome)
                    assert not ended.is_set(), f"gave up unexpectedly: {outcome}"
                    await check(model, supervisor)
            except Escalated:
                event("gave up")
            supervisor.request_stop()
    event(f"restarts: {min(sum(model.restarts.values()), 10)}")

    for name in NAMES:  # nothing is left running, whatever happened
        assert journal.count("stop", name) == journal.count("start", name)
    assert all(s.state in ("stopped", "failed") for s in supervisor.child_snapshots())


async def step(
    op: Op,
    model: Model,
    journal: Journal,
    specs: dict[str, ChildSpec],
    ended: trio.Event,
    outcome: list[BaseException],
) -> None:
    if op[0] == "wait":
        await trio.sleep(op[1])
        return
    kind, index = op
    name = NAMES[index]
    if name not in model.order or not model.running[name]:
        return  # mail for a stopped child would wait for its next start; keep it simple
    starts = {n: journal.count("start", n) for n in NAMES}
    stops = journal.count("stop", name)
    now = trio.current_time()
    await specs[name].ref.tell(Crash() if kind == "crash" else Exit())
    await journal.wait_for("stop", name, stops + 1)

    restart = model.restart_type(name)
    if restart == RestartType.TEMPORARY or (restart == RestartType.TRANSIENT and kind == "exit"):
        model.running[name] = False
        if restart == RestartType.TEMPORARY:
            model.order.remove(name)
        await trio.testing.wait_all_tasks_blocked()
        return
    if model.gives_up(now):
        await ended.wait()
        [error] = outcome
        assert isinstance(error, SupervisorEscalation)
        assert error.child == name
        raise Escalated

    delay = model.delay(name, now)
    assert delay <= model.plan.backoff.maximum
    back = []
    for n in model.affected(name):
        if n != name and model.restart_type(n) == RestartType.TEMPORARY:
            model.order.remove(n)  # stopped and forgotten, never restarted
            model.running[n] = False
        else:
            back.append(n)
    with trio.fail_after(model.plan.backoff.maximum + 1):
        for n in back:
            started = await journal.wait_for("start", n, starts[n] + 1)
            assert abs(started - (now + delay)) < 1e-6, (n, started, now, delay)
            assert started - now <= model.plan.backoff.maximum + 1e-6
            model.restarts[n] += 1
            model.running[n] = True
            model.started_at[n] = started
    await trio.testing.wait_all_tasks_blocked()


async def check(model: Model, supervisor: Supervisor) -> None:
    assert await supervisor.ref.ask(WhichChildren()) == tuple(model.order)
    for snap in supervisor.child_snapshots():
        assert snap.restarts == model.restarts[snap.name], snap
        assert snap.state == ("running" if model.running[snap.name] else "stopped"), snap


class TestSupervisorModel:
    @settings(max_examples=100, deadline=None)
    @given(plan=plans)
    def test_agrees_with_the_model(self, plan: Plan) -> None:
        """Restarts, delays and giving up follow the OTP rules for any run of events."""
        trio.run(drive, plan, clock=trio.testing.MockClock(autojump_threshold=0))
