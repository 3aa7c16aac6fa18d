"""Durable workflows on a running runtime, in virtual time, on every store."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
import trio
import trio.testing

from trellis_actors import (
    App,
    NonDeterminism,
    NotAWorkflow,
    StepFailed,
    TaskContext,
    TaskNotFound,
    TaskStatus,
    ValidationError,
    WorkflowContext,
    WorkflowEnded,
    open_runtime,
)
from trellis_actors.workflows import EntryKind, EntryOutcome

S = TaskStatus
DAY = 86400.0
#: Days pass in virtual time: the runtime's periodic work (polls, janitor, heartbeats) is
#: spaced out so that the clock takes few steps; timers still wake the queue on time.
SPARSE = {
    "poll_interval": 6 * 3600.0,
    "janitor_interval": 6 * 3600.0,
    "heartbeat": None,
    "readiness_interval": 6 * 3600.0,
    "lease": DAY,
}


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The stores virtual time can drive (PostgreSQL: see test_postgres_workflow below,
    and the store conformance suite)."""
    if request.param == "memory":
        return "memory://"
    # Virtual time jumps only when nothing has happened for 20 ms of real time, so that
    # it does not run ahead while SQLite works in its thread.
    clock: trio.testing.MockClock = request.getfixturevalue("autojump_clock")
    clock.autojump_threshold = 0.02
    return f"sqlite:///{tmp_path / 'wf.db'}"


class Signup(pydantic.BaseModel):
    email: str


class Summary(pydantic.BaseModel):
    status: str
    account: str | None = None


def onboarding_app(calls: Counter[str]) -> App:
    """The onboarding workflow of the docs, counting each step's runs."""
    app = App()

    @app.task
    async def create_account(ctx: TaskContext, signup: Signup) -> str:
        calls["create_account"] += 1
        return f"acct-{signup.email}"

    @app.task
    async def send_welcome(ctx: TaskContext, account: str) -> str:
        calls["send_welcome"] += 1
        return f"welcomed {account}"

    @app.task
    async def provision(ctx: TaskContext, account: str) -> str:
        calls["provision"] += 1
        return f"provisioned {account}"

    @app.workflow
    async def onboard(wf: WorkflowContext, signup: Signup) -> Summary:
        calls["onboard"] += 1
        user = await wf.run(create_account, signup)
        await wf.sleep(timedelta(days=1))
        approved = await wf.wait_signal("approved", timeout=timedelta(days=3))
        if approved is None:
            return Summary(status="expired")
        a, _ = await wf.gather(wf.run(send_welcome, user), wf.run(provision, user))
        return Summary(status="done", account=a)

    return app


async def until(rt: Any, task_id: str, status: TaskStatus) -> None:
    """Wait (in virtual time) until the task is ``status``."""
    async with rt.subscribe() as events:
        if (await rt.get(task_id)).status is status:
            return
        async for move in events:
            if move.task.id == task_id and move.task.status is status:
                return


async def waiting_on(rt: Any, task_id: str, kind: EntryKind) -> None:
    """Wait until the workflow waits with its last history entry a pending ``kind``."""

    async def there() -> bool:
        state = await rt.workflow(task_id)
        last = state.history[-1] if state.history else None
        return (
            state.task.status is S.WAITING
            and last is not None
            and last.kind is kind
            and last.outcome is None
        )

    async with rt.subscribe() as events:
        if await there():
            return
        async for move in events:
            if move.task.id == task_id and move.task.status is S.WAITING and await there():
                return


class TestOnboarding:
    async def test_sleeps_a_day_then_takes_a_signal_and_fans_out(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The whole example: each step runs once, the sleep lasts a day of virtual time
        holding no worker, and the signal sent while it waits is received."""
        calls: Counter[str] = Counter()
        app = onboarding_app(calls)
        async with open_runtime(app, store=store_url, workers=2, **SPARSE) as rt:
            t0 = trio.current_time()
            flow = await rt.submit(app.get("onboard").name, Signup(email="a@x").model_dump())
            await waiting_on(rt, flow.id, EntryKind.SLEEP)
            state = await rt.workflow(flow.id)
            sleep = state.history[1]
            assert sleep.kind is EntryKind.SLEEP and sleep.outcome is None
            assert sleep.wake_at == pytest.approx(state.history[0].recorded_at + DAY, abs=5)
            await trio.sleep(DAY + 60)
            await rt.signal(flow.id, "approved", {"by": "ops"})
            done = await rt.wait(flow.id)
            state = await rt.workflow(flow.id)
        assert done.status is S.COMPLETED, done.error
        assert done.result == {"status": "done", "account": "welcomed acct-a@x"}
        assert trio.current_time() - t0 >= DAY
        assert calls["create_account"] == calls["send_welcome"] == calls["provision"] == 1
        assert calls["onboard"] >= 4  # replayed after each step, the sleep and the signal
        kinds = [(e.kind, e.outcome) for e in state.history]
        assert kinds == [
            (EntryKind.STEP, EntryOutcome.COMPLETED),
            (EntryKind.SLEEP, EntryOutcome.ELAPSED),
            (EntryKind.SIGNAL, EntryOutcome.RECEIVED),
            (EntryKind.STEP, EntryOutcome.COMPLETED),
            (EntryKind.STEP, EntryOutcome.COMPLETED),
        ]
        assert state.history[2].value == {"by": "ops"}
        assert [s.parent_id for s in state.steps] == [flow.id] * 3
        assert {s.status for s in state.steps} == {S.COMPLETED}
        assert done.attempt == 1  # continuations are not attempts

    async def test_signal_sent_before_the_wait_is_kept(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A signal sent while the workflow still sleeps is delivered when it waits."""
        calls: Counter[str] = Counter()
        app = onboarding_app(calls)
        async with open_runtime(app, store=store_url, workers=2, **SPARSE) as rt:
            flow = await rt.submit("onboard", {"email": "b@x"})
            await waiting_on(rt, flow.id, EntryKind.SLEEP)
            await rt.signal(flow.id, "approved", True)
            done = await rt.wait(flow.id)
        assert done.result == {"status": "done", "account": "welcomed acct-b@x"}

    async def test_signal_timeout(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """No signal within three days: wait_signal gives None, recorded as timed out."""
        calls: Counter[str] = Counter()
        app = onboarding_app(calls)
        async with open_runtime(app, store=store_url, workers=2, **SPARSE) as rt:
            t0 = trio.current_time()
            flow = await rt.submit("onboard", {"email": "c@x"})
            done = await rt.wait(flow.id)
            state = await rt.workflow(flow.id)
            with pytest.raises(WorkflowEnded, match="can no longer receive signals"):
                await rt.signal(flow.id, "approved")
        assert done.result == {"status": "expired", "account": None}
        assert trio.current_time() - t0 == pytest.approx(4 * DAY, abs=60)
        assert state.history[2].outcome is EntryOutcome.TIMED_OUT
        assert calls["send_welcome"] == 0


class TestSignals:
    async def test_in_order_each_once(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Signals of one name are received in the order sent, each once."""
        app = App()

        @app.workflow
        async def collect(wf: WorkflowContext, n: int) -> list[Any]:
            return [await wf.wait_signal("item") for _ in range(n)]

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            flow = await rt.submit(collect, 3)
            await rt.signal(flow.id, "item", 1)
            await rt.signal(flow.id, "other", "x")
            await rt.signal(flow.id, "item", 2)
            await waiting_on(rt, flow.id, EntryKind.SIGNAL)
            await rt.signal(flow.id, "item", 3)
            await rt.signal(flow.id, "item", 4)
            done = await rt.wait(flow)
            state = await rt.workflow(flow.id)
        assert done.result == [1, 2, 3]
        assert [(s.payload, s.consumed_by) for s in state.signals] == [
            (1, 1),
            ("x", None),
            (2, 2),
            (3, 3),
            (4, None),
        ]

    async def test_only_a_signal_it_waits_for_wakes_it(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A signal of another name is kept without running the workflow again; the one it
        waits for wakes it; the kept one is received when it asks for it."""
        app = App()
        runs: Counter[str] = Counter()

        @app.workflow
        async def two(wf: WorkflowContext, _: Any) -> list[Any]:
            runs["run"] += 1
            return [await wf.wait_signal("first"), await wf.wait_signal("second")]

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            flow = await rt.submit(two, None)
            await waiting_on(rt, flow.id, EntryKind.SIGNAL)
            await rt.signal(flow.id, "second", 2)
            assert (await rt.get(flow.id)).status is TaskStatus.WAITING
            before = runs["run"]
            await rt.signal(flow.id, "first", 1)
            done = await rt.wait(flow)
            woken = [e.detail for e in await rt.events(flow.id) if e.to_status is TaskStatus.QUEUED]
        assert done.result == [1, 2]
        assert runs["run"] == before + 1  # one run after "first": "second" was there already
        assert "signal 'second'" not in woken
        assert "signal 'first'" in woken

    async def test_refusals(self, store_url: str, autojump_clock: trio.testing.MockClock) -> None:
        """Unknown id, a task that is not a workflow, a payload that is not JSON."""
        app = App()

        @app.workflow
        async def wait(wf: WorkflowContext, _: Any) -> Any:
            return await wf.wait_signal("go")

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            task = await rt.submit("echo", 1)
            with pytest.raises(TaskNotFound):
                await rt.signal("0190b6f0-0000-7000-8000-000000000000", "go")
            with pytest.raises(NotAWorkflow, match="not a workflow"):
                await rt.signal(task.id, "go")
            with pytest.raises(NotAWorkflow):
                await rt.workflow(task.id)
            flow = await rt.submit(wait, None)
            with pytest.raises(ValidationError) as caught:
                await rt.signal(flow.id, "go", {1, 2})
            assert caught.value.field == "payload"
            with pytest.raises(ValidationError):
                await rt.signal(flow.id, "", 1)
            await rt.signal(flow.id, "go", "yes")
            assert (await rt.wait(flow.id)).result == "yes"


class TestFailures:
    def app(self, calls: Counter[str]) -> App:
        app = App()

        @app.task(max_attempts=2)
        async def flaky(ctx: TaskContext, n: int) -> int:
            calls[f"flaky{n}"] += 1
            if n < 0:
                raise RuntimeError(f"bad {n}")
            return n * 10

        @app.workflow
        async def caught(wf: WorkflowContext, _: Any) -> Any:
            try:
                await wf.gather(wf.run(flaky, 1), wf.run(flaky, -1))
            except StepFailed as exc:
                return {"type": exc.error.type, "message": exc.error.message, "step": exc.step}
            return "no failure"

        @app.workflow(max_attempts=5)
        async def uncaught(wf: WorkflowContext, _: Any) -> Any:
            calls["uncaught"] += 1
            return await wf.gather(wf.run(flaky, 2), wf.run(flaky, -2))

        return app

    async def test_gather_with_a_failing_branch_caught(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The failing step's error reaches the workflow as StepFailed; the other branch
        still ran once."""
        calls: Counter[str] = Counter()
        async with open_runtime(self.app(calls), store=store_url, **SPARSE) as rt:
            flow = await rt.submit("caught", None)
            done = await rt.wait(flow.id)
            state = await rt.workflow(flow.id)
        assert done.status is S.COMPLETED
        failed = next(s for s in state.steps if s.payload == -1)
        assert done.result == {"type": "RuntimeError", "message": "bad -1", "step": failed.id}
        assert calls["flaky1"] == 1 and calls["flaky-1"] == 2  # its own retries

    async def test_gather_with_a_failing_branch_uncaught(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Uncaught, the step's failure fails the workflow with its error, no retry."""
        calls: Counter[str] = Counter()
        async with open_runtime(self.app(calls), store=store_url, **SPARSE) as rt:
            flow = await rt.submit("uncaught", None)
            done = await rt.wait(flow.id)
        assert done.status in (S.FAILED, S.DEAD)
        assert done.error is not None and done.error.type == "RuntimeError"
        assert "step 'flaky'" in done.error.message and "bad -2" in done.error.message
        assert done.attempt == 1

    async def test_a_bug_in_the_workflow_retries_as_attempts(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A workflow function that raises is retried by its type's policy; only those
        runs count as attempts."""
        runs: Counter[str] = Counter()
        app = App()

        @app.task
        async def ok(ctx: TaskContext, _: Any) -> int:
            return 1

        @app.workflow(max_attempts=3)
        async def buggy(wf: WorkflowContext, _: Any) -> Any:
            await wf.run(ok, None)
            runs["after"] += 1
            raise KeyError("bug")

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            flow = await rt.submit(buggy, None)
            done = await rt.wait(flow.id)
        assert done.status in (S.FAILED, S.DEAD)
        assert done.attempt == 3 and runs["after"] == 3
        assert done.error is not None and done.error.type == "KeyError"


class TestCancel:
    async def test_during_a_step(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Cancelling the workflow cancels its running step and ends it cancelled."""
        started = trio.Event()
        app = App()

        @app.task
        async def slow(ctx: TaskContext, _: Any) -> None:
            started.set()
            await trio.sleep(3600)

        @app.workflow
        async def flow(wf: WorkflowContext, _: Any) -> Any:
            return await wf.run(slow, None)

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            task = await rt.submit(flow, None)
            await started.wait()
            cancelled = await rt.cancel(task.id)
            done = await rt.wait(task.id)
            state = await rt.workflow(task.id)
        assert cancelled.status is S.CANCELLED and done.status is S.CANCELLED
        assert [s.status for s in state.steps] == [S.CANCELLED]

    async def test_in_bulk_stops_the_running_step(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A bulk cancel of workflows stops their running steps' handlers here."""
        started, stopped = trio.Event(), trio.Event()
        app = App()

        @app.task
        async def slow(ctx: TaskContext, _: Any) -> None:
            started.set()
            try:
                await trio.sleep(DAY)
            finally:
                stopped.set()

        @app.workflow
        async def flow(wf: WorkflowContext, _: Any) -> Any:
            return await wf.run(slow, None)

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            task = await rt.submit(flow, None)
            await started.wait()
            t0 = trio.current_time()
            assert await rt.cancel_many(type="flow") == 1
            await stopped.wait()
            assert trio.current_time() - t0 < 60  # at once, not at a lease renewal
            state = await rt.workflow(task.id)
        assert state.task.status is S.CANCELLED
        assert [s.status for s in state.steps] == [S.CANCELLED]

    async def test_during_a_sleep(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A sleeping workflow is cancelled at once; it never wakes."""
        runs: Counter[str] = Counter()
        app = App()

        @app.workflow
        async def nap(wf: WorkflowContext, _: Any) -> Any:
            runs["nap"] += 1
            await wf.sleep(DAY)
            runs["woke"] += 1

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            task = await rt.submit(nap, None)
            await waiting_on(rt, task.id, EntryKind.SLEEP)
            await rt.cancel(task.id)
            await trio.sleep(2 * DAY)
            done = await rt.get(task.id)
        assert done.status is S.CANCELLED and runs == {"nap": 1}


class TestDeterminism:
    async def test_changed_code_fails_the_workflow_naming_both(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The code asks for a sleep where the history has a step: failed, no retry."""
        app = App()
        first = trio.Event()

        @app.task
        async def a(ctx: TaskContext, _: Any) -> int:
            return 1

        @app.task
        async def b(ctx: TaskContext, _: Any) -> int:
            return 2

        version = {"n": 1}

        @app.workflow(max_attempts=5)
        async def flow(wf: WorkflowContext, _: Any) -> Any:
            await wf.run(a, None)
            if version["n"] == 1:
                first.set()
                await wf.run(b, None)
            else:
                await wf.sleep(10)
            return "done"

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            task = await rt.submit(flow, None)
            await first.wait()
            version["n"] = 2  # a deploy that changed the code mid-flight
            done = await rt.wait(task.id)
        assert done.status in (S.FAILED, S.DEAD)
        assert done.error is not None and done.error.type == "NonDeterminism"
        assert "history has step 'b' at position 2, the code asked for sleep" in (
            done.error.message
        )
        assert done.attempt == 1

    async def test_recorded_values_are_replayed(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """now, random and uuid give the same values on every replay."""
        seen: list[tuple[Any, ...]] = []
        app = App()

        @app.task
        async def step(ctx: TaskContext, _: Any) -> None:
            return None

        @app.workflow
        async def flow(wf: WorkflowContext, _: Any) -> Any:
            values = (wf.now().timestamp(), wf.random(), str(wf.uuid()))
            seen.append(values)
            await wf.run(step, None)
            await wf.sleep(5)
            return list(values)

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            done = await rt.wait(await rt.submit(flow, None))
        assert len(seen) >= 3 and len(set(seen)) == 1
        assert done.result == list(seen[0])

    async def test_catching_base_exceptions_does_not_hide_a_suspend(
        self, store_url: str, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A workflow that swallows everything still suspends, and a non-determinism
        it catches still fails it."""
        app = App()

        @app.task
        async def step(ctx: TaskContext, n: int) -> int:
            return n

        @app.workflow
        async def greedy(wf: WorkflowContext, _: Any) -> Any:
            try:
                value = await wf.run(step, 7)
            except BaseException:
                value = None
            return value

        async with open_runtime(app, store=store_url, **SPARSE) as rt:
            done = await rt.wait(await rt.submit(greedy, None))
        assert done.result == 7
        assert NonDeterminism.__mro__  # exported


class TestContracts:
    async def test_typed_handle_validates_payload_and_reads_result(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A workflow's handle checks its payload on submit and parses its result."""
        calls: Counter[str] = Counter()
        app = onboarding_app(calls)
        onboard = app.get("onboard")
        assert onboard.workflow and onboard.contract.payload is not None
        async with open_runtime(app, **SPARSE) as rt:
            with pytest.raises(ValidationError, match="payload"):
                await rt.submit("onboard", {"nope": 1})
            flow = await rt.submit("onboard", {"email": "t@x"})
            await waiting_on(rt, flow.id, EntryKind.SLEEP)
            await rt.signal(flow.id, "approved", 1)
            done = await rt.wait(flow.id)
        assert done.result == {"status": "done", "account": "welcomed acct-t@x"}

    def test_a_workflow_must_be_async(self) -> None:
        from trellis_actors import ConfigurationError

        app = App()
        with pytest.raises(ConfigurationError, match="async def"):

            @app.workflow
            def flow(wf: WorkflowContext, _: Any) -> Any:  # type: ignore[arg-type]  # the point
                return None


class TestRestart:
    async def test_a_new_runtime_on_the_same_file_finishes_it(
        self, tmp_path: Path, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Close the runtime while the workflow waits; a new one on the file goes on."""
        calls: Counter[str] = Counter()
        autojump_clock.autojump_threshold = 0.02  # SQLite works in a thread
        url = f"sqlite:///{tmp_path / 'restart.db'}"
        async with open_runtime(onboarding_app(calls), store=url, **SPARSE) as rt:
            flow = await rt.submit("onboard", {"email": "r@x"})
            await waiting_on(rt, flow.id, EntryKind.SLEEP)
        assert calls["create_account"] == 1
        async with open_runtime(onboarding_app(calls), store=url, **SPARSE) as rt:
            await rt.signal(flow.id, "approved", True)
            done = await rt.wait(flow.id)
        assert done.status is S.COMPLETED
        assert done.result == {"status": "done", "account": "welcomed acct-r@x"}
        assert calls["create_account"] == calls["send_welcome"] == calls["provision"] == 1


@pytest.mark.postgres
async def test_postgres_workflow(pg_url: str) -> None:
    """On PostgreSQL, in real time: a step, a short sleep, a signal, a fan-out."""
    calls: Counter[str] = Counter()
    app = App()

    @app.task
    async def double(ctx: TaskContext, n: int) -> int:
        calls[f"double{n}"] += 1
        return 2 * n

    @app.workflow
    async def flow(wf: WorkflowContext, n: int) -> Any:
        first = await wf.run(double, n)
        await wf.sleep(0.2)
        extra = await wf.wait_signal("extra", timeout=30)
        more = await wf.gather(wf.run(double, first), wf.run(double, extra))
        return [first, *more]

    async with open_runtime(app, store=pg_url, poll_interval=0.05) as rt:
        task = await rt.submit(flow, 1)
        await rt.signal(task.id, "extra", 5)
        with trio.fail_after(30):
            done = await rt.wait(task.id)
        state = await rt.workflow(task.id)
    assert done.status is S.COMPLETED, done.error
    assert done.result == [2, 4, 10]
    assert calls == {"double1": 1, "double2": 1, "double5": 1}
    assert [e.kind for e in state.history] == [
        EntryKind.STEP,
        EntryKind.SLEEP,
        EntryKind.SIGNAL,
        EntryKind.STEP,
        EntryKind.STEP,
    ]
