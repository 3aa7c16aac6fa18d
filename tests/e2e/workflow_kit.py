"""Waiting for a workflow to reach a state, told by the server's event stream."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from trellis_actors.client import Client
from trellis_actors.workflows import EntryKind, WorkflowState

Check = Callable[[WorkflowState], bool]


def until(url: str, workflow_id: str, check: Check, timeout: float = 60.0) -> WorkflowState:
    """The workflow once ``check`` holds for it: checked once subscribed to its moves
    (``/events?workflow_id=``), then again at each move of it or of its steps."""
    params = {"workflow_id": workflow_id}
    with (
        Client(url) as client,
        httpx.Client(base_url=url, timeout=httpx.Timeout(timeout)) as http,
        http.stream("GET", "/events", params=params) as stream,
    ):
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith(": subscribed"):
                break
        state = client.workflow(workflow_id)
        while not check(state):
            for line in lines:
                if line.startswith("data:"):
                    break
            else:
                raise AssertionError(f"the event stream ended before {check.__doc__}")
            state = client.workflow(workflow_id)
        return state


def waits_for(kind: EntryKind) -> Check:
    """The workflow waits (suspended) with a pending ``kind`` last in its history."""

    def check(state: WorkflowState) -> bool:
        last = state.history[-1] if state.history else None
        return (
            state.task.status == "waiting"
            and last is not None
            and last.kind is kind
            and last.outcome is None
        )

    check.__doc__ = f"the workflow waits for a {kind.value}"
    return check
