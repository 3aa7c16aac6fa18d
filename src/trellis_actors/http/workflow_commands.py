"""``trellis signal`` and ``trellis workflow``: a workflow's signals and its history, over
the HTTP API (see :mod:`trellis_actors.http.client_commands` for the conventions)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .client_commands import MakeCommand, _client, _payload, _print_json, _print_table, _say


def add_workflow_commands(
    commands: Any, make: MakeCommand, client: argparse.ArgumentParser
) -> None:
    """Add ``signal`` and ``workflow`` to ``trellis``'s commands."""
    signal = make(commands, "signal", "send a signal to a workflow on a server", client)
    signal.add_argument("id", help="the workflow's task id")
    signal.add_argument("name", help="the signal's name, as the workflow waits for it")
    signal.add_argument(
        "--payload", metavar="JSON|@FILE", help="the payload: JSON text, @file or @- (stdin)"
    )
    signal.set_defaults(run=signal_command)
    workflow = make(commands, "workflow", "show a workflow: its steps, sleeps and signals", client)
    workflow.add_argument("id", help="the workflow's task id")
    workflow.set_defaults(run=workflow_command)


def signal_command(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    with _client(args) as client:
        client.signal(args.id, args.name, payload)
    if args.json:
        _print_json({"workflow_id": args.id, "name": args.name, "payload": payload})
    else:
        _say(f"sent signal {args.name!r} to workflow {args.id}")
    return 0


def workflow_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        state = client.workflow(args.id)
    if args.json:
        _print_json(state.to_dict())
        return 0
    task = state.task.to_dict()
    for key in ("id", "type", "status", "created_at", "finished_at"):
        print(f"{key + ':':<14}{task[key]}")
    if task["status"] == "completed":
        print(f"{'result:':<14}{json.dumps(task['result'])}")
    if task["error"]:
        print(f"{'error:':<14}{task['error']['type']}: {task['error']['message']}")
    steps = {step.id: step for step in state.steps}
    rows = [["SEQ", "KIND", "WHAT", "OUTCOME", "AT", "DETAIL"]]
    for entry in state.history:
        shown = entry.to_dict()
        outcome = shown["outcome"] or "waiting"
        detail = ""
        if entry.step_id is not None:
            step = steps.get(entry.step_id)
            status = f" ({step.status.value})" if step is not None else ""
            detail = f"task {entry.step_id}{status}"
        elif entry.wake_at is not None and entry.outcome is None:
            detail = f"until {shown['wake_at']}"
        if entry.error is not None:
            detail += f" {entry.error.type}: {entry.error.message}"
        elif entry.kind.value in ("now", "random", "uuid") or entry.outcome == "received":
            detail = json.dumps(entry.value)
        rows.append(
            [
                str(entry.seq),
                entry.kind.value,
                entry.name or "",
                outcome,
                shown["resolved_at"] or shown["recorded_at"] or "",
                detail.strip(),
            ]
        )
    print("history:")
    _print_table(rows)
    kept = [signal for signal in state.signals if signal.consumed_by is None]
    if kept:
        print("signals not yet received: " + ", ".join(signal.name for signal in kept))
    return 0
