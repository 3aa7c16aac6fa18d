"""A workflow's task page over the Quart test client: its timeline shows each kind of
history entry and outcome; a step's page links to its workflow; the live stream of a
workflow's page tells of its steps' moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from quart_trio import QuartTrio

from trellis_actors import App, Runtime, StepFailed, TaskContext, WorkflowContext, open_runtime
from trellis_actors.http import create_app
from trellis_actors.ui._state import close_live


def flows() -> App:
    app = App()

    @app.task(max_attempts=1)
    async def boom(ctx: TaskContext, payload: Any) -> None:
        raise RuntimeError("boom <b>")

    @app.workflow
    async def varied(wf: WorkflowContext, payload: Any) -> str:
        wf.now()
        wf.uuid()
        with contextlib.suppress(StepFailed):
            await wf.run(boom)
        late = await wf.wait_signal("late", timeout=60)
        assert late is None
        return str(await wf.wait_signal("never"))

    @app.task(queue="held")
    async def hold(ctx: TaskContext, payload: Any) -> None:
        await trio.sleep_forever()

    @app.workflow
    async def holds(wf: WorkflowContext, payload: Any) -> None:
        await wf.run(hold)

    return app


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with open_runtime(flows(), store="memory://", workers=2) as rt:
        yield rt


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[QuartTrio]:
    app = create_app(runtime)
    async with app.test_app() as test_app:
        yield test_app


async def waiting_for(runtime: Runtime, flow_id: str, name: str) -> None:
    async with runtime.subscribe() as moves:
        while True:
            state = await runtime.workflow(flow_id)
            if state.task.status == "waiting" and state.history[-1].name == name:
                return
            async for move in moves:
                if move.task.id == flow_id:
                    break


class TestWorkflowPage:
    async def test_every_kind_of_entry(
        self, app: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Recorded values, a failed step with its (escaped) error, a timed-out signal
        wait, a pending one, and a signal kept for later."""
        flow = await runtime.submit("varied")
        await waiting_for(runtime, flow.id, "never")
        await runtime.signal(flow.id, "other", 1)
        await waiting_for(runtime, flow.id, "never")  # (if the signal woke it)
        client = app.test_client()
        page = await (await client.get(f"/ui/tasks/{flow.id}")).get_data(as_text=True)
        for seq, kind, outcome in (
            (1, "now", "recorded"),
            (2, "uuid", "recorded"),
            (3, "step", "failed"),
            (4, "signal", "timed_out"),
            (5, "signal", "pending"),
        ):
            assert f'data-kind="{kind}" data-seq="{seq}" data-outcome="{outcome}"' in page
        assert "RuntimeError: boom &lt;b&gt;" in page
        assert "timed out" in page
        assert "Signals not yet received" in page and "<strong>other</strong>" in page
        assert "<dt>Due</dt>" not in page and "9999" not in page  # waiting without a timer

        state = await runtime.workflow(flow.id)
        step = state.steps[0]
        page = await (await client.get(f"/ui/tasks/{step.id}")).get_data(as_text=True)
        assert f'href="/ui/tasks/{flow.id}"' in page
        assert 'data-testid="workflow-timeline"' not in page

    async def test_the_live_stream_tells_of_steps(
        self, app: Any, runtime: Runtime, autojump_clock: trio.testing.MockClock
    ) -> None:
        """/ui/live?task_id=<workflow> sends 'changed' when one of its steps moves while
        the workflow itself does not."""
        await runtime.pause_queue("held")
        flow = await runtime.submit("holds")
        state = await runtime.workflow(flow.id)
        async with runtime.subscribe() as moves:
            while not state.steps:
                async for move in moves:
                    if move.task.id == flow.id:
                        break
                state = await runtime.workflow(flow.id)
        assert state.task.status == "waiting"
        client = app.test_client()
        async with client.request(f"/ui/live?task_id={flow.id}") as connection:
            await connection.send_complete()
            first = bytes(await connection.receive())
            assert b": subscribed" in first
            assert first.endswith(b"event: changed\ndata: \n\n")  # catch up once
            await runtime.resume_queue("held")  # the step runs: only it moves
            changed = b""
            with trio.fail_after(60):  # keep-alives come every 15 s meanwhile
                while b"event: changed" not in changed:
                    changed += bytes(await connection.receive())
            assert (await runtime.get(flow.id)).status == "waiting"
            close_live(app.app.extensions)  # as a stopping server ends the stream
        await runtime.cancel(flow.id)
