"""``trellis submit`` and ``trellis tasks …``: client commands over the HTTP API.

Results go to stdout (ids, tables, JSON with ``--json``); progress and messages to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .client import DEFAULT_URL, EXIT_FAILED, EXIT_USAGE, ApiClient, ClientError

#: Statuses after which a task does not move on its own.
ENDED = frozenset({"completed", "failed", "dead", "cancelled"})
POLL_INTERVAL = 0.2

MakeCommand = Callable[..., argparse.ArgumentParser]


def add_commands(commands: Any, make: MakeCommand) -> None:
    """Add ``submit`` and ``tasks`` to the ``trellis`` sub-command parsers."""
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--url",
        default=os.environ.get("TRELLIS_URL", DEFAULT_URL),
        help=f"the server (env TRELLIS_URL; default {DEFAULT_URL})",
    )
    client.add_argument(
        "--token",
        default=os.environ.get("TRELLIS_API_TOKEN"),
        help="the server's API token (env TRELLIS_API_TOKEN)",
    )
    client.add_argument("--json", action="store_true", help="print JSON instead of text")

    submit = make(commands, "submit", "submit a task to a server", client)
    submit.add_argument("type", help="the task type, e.g. echo")
    submit.add_argument(
        "--payload", metavar="JSON|@FILE", help="the payload: JSON text, @file or @- (stdin)"
    )
    submit.add_argument("--queue", help="default: the type's queue")
    submit.add_argument("--priority", type=int, help="higher runs first (default 0)")
    submit.add_argument("--delay", type=float, metavar="SECONDS", help="run after this long")
    submit.add_argument("--run-at", metavar="ISO8601", help="run at this time (UTC if naive)")
    submit.add_argument("--max-attempts", type=int, help="default: the type's")
    submit.add_argument("--task-timeout", type=float, metavar="SECONDS", help="per attempt")
    submit.add_argument("--idempotency-key", help="a repeat returns the existing task")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="wait for the task to end, showing progress on stderr; exit 1 unless completed",
    )
    submit.set_defaults(run=submit_command)

    tasks = make(commands, "tasks", "list, show, cancel or requeue tasks on a server")
    actions = tasks.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = make(actions, "list", "list tasks, newest first", client)
    listing.add_argument("--status", help="pending, queued, running, completed, ...")
    listing.add_argument("--type", help="only this task type")
    listing.add_argument("--queue", help="only this queue")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1-1000)")
    listing.add_argument("--cursor", help="the next page: the cursor a listing printed")
    listing.set_defaults(run=list_command)
    for name, help, run in (
        ("show", "show a task and its history", show_command),
        ("cancel", "cancel a task (a running handler is interrupted)", cancel_command),
        ("requeue", "send a dead task back to its queue", requeue_command),
    ):
        action = make(actions, name, help, client)
        action.add_argument("id", help="the task id")
        action.set_defaults(run=run)


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.url, token=args.token)


def _payload(text: str | None) -> Any:
    if text is None:
        return None
    source = "--payload"
    if text.startswith("@"):
        name = text[1:]
        source = "stdin" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise ClientError(
                f"--payload: cannot read {name}: {exc.strerror}", EXIT_USAGE
            ) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ClientError(f"--payload: {source} is not valid JSON: {exc}", EXIT_USAGE) from None


def submit_command(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"type": args.type, "payload": _payload(args.payload)}
    for field, value in (
        ("queue", args.queue),
        ("priority", args.priority),
        ("delay", args.delay),
        ("run_at", args.run_at),
        ("max_attempts", args.max_attempts),
        ("timeout", args.task_timeout),
        ("idempotency_key", args.idempotency_key),
    ):
        if value is not None:
            body[field] = value
    with _client(args) as client:
        task = client.post("/tasks", body)
        if not args.json:
            print(task["id"], flush=True)
        _say(f"submitted {task['type']} task {task['id']} to queue {task['queue']}")
        if not args.wait:
            if args.json:
                _print_json(task)
            return 0
        task = _wait(client, task)
    if args.json:
        _print_json(task)
    elif task["status"] == "completed":
        _print_json(task["result"])
    return _report_end(task)


def _wait(client: ApiClient, task: dict[str, Any]) -> dict[str, Any]:
    bar = ProgressBar(sys.stderr)
    while task["status"] not in ENDED:
        bar.show(task)
        time.sleep(POLL_INTERVAL)
        task = client.get(f"/tasks/{task['id']}")
    bar.show(task)
    bar.close()
    return dict(task)


def _report_end(task: dict[str, Any]) -> int:
    status = task["status"]
    if status == "completed":
        _say(f"task {task['id']} completed (attempt {task['attempt']})")
        return 0
    error = task.get("error") or {}
    why = f": {error.get('type')}: {error.get('message')}" if error else ""
    _say(f"task {task['id']} ended {status} after {task['attempt']} attempt(s){why}")
    return EXIT_FAILED


class ProgressBar:
    """One line of progress on a terminal (redrawn), or a line per change otherwise."""

    WIDTH = 30

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = ""

    def show(self, task: dict[str, Any]) -> None:
        line = self.render(task)
        if line == self._last:
            return
        self._last = line
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._last:
            self._stream.write("\n")
            self._stream.flush()

    @classmethod
    def render(cls, task: dict[str, Any]) -> str:
        progress = task.get("progress") or {}
        fraction = progress.get("fraction")
        if fraction is None:
            fraction = 1.0 if task["status"] == "completed" else 0.0
        filled = round(max(0.0, min(1.0, fraction)) * cls.WIDTH)
        bar = "#" * filled + "-" * (cls.WIDTH - filled)
        message = progress.get("message") or ""
        return f"[{bar}] {fraction * 100:3.0f}% {task['status']} {message}".rstrip()


def list_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.get(
            "/tasks",
            status=args.status,
            type=args.type,
            queue=args.queue,
            limit=args.limit,
            cursor=args.cursor,
        )
    if args.json:
        _print_json(page)
        return 0
    rows = [("ID", "STATUS", "TYPE", "QUEUE", "ATTEMPT", "CREATED")]
    for task in page["items"]:
        attempt = f"{task['attempt']}/{task['max_attempts']}"
        created = task["created_at"] or ""
        rows.append((task["id"], task["status"], task["type"], task["queue"], attempt, created))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if page["next_cursor"]:
        _say(f"more tasks: trellis tasks list --cursor {page['next_cursor']}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        task = client.get(f"/tasks/{args.id}")
        events = client.get(f"/tasks/{args.id}/events")["items"]
    if args.json:
        _print_json({**task, "events": events})
        return 0
    for key in ("id", "type", "queue", "status", "priority", "run_at", "created_at"):
        print(f"{key + ':':<14}{task[key]}")
    print(f"{'attempt:':<14}{task['attempt']} of {task['max_attempts']}")
    if task["progress"]:
        print(f"{'progress:':<14}{ProgressBar.render(task)}")
    print(f"{'payload:':<14}{json.dumps(task['payload'])}")
    if task["status"] == "completed":
        print(f"{'result:':<14}{json.dumps(task['result'])}")
    if task["error"]:
        print(f"{'error:':<14}{task['error']['type']}: {task['error']['message']}")
    print("history:")
    for event in events:
        detail = f"  ({event['detail']})" if event["detail"] else ""
        print(f"  {event['at']}  {event['from'] or '(new)'} -> {event['to']}{detail}")
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    return _move(args, "DELETE", f"/tasks/{args.id}", "cancelled")


def requeue_command(args: argparse.Namespace) -> int:
    return _move(args, "POST", f"/tasks/{args.id}/requeue", "requeued")


def _move(args: argparse.Namespace, method: str, path: str, done: str) -> int:
    with _client(args) as client:
        task = client.request(method, path)
    if args.json:
        _print_json(task)
    else:
        print(f"{done} task {task['id']} (now {task['status']})")
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2 if sys.stdout.isatty() else None), flush=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
