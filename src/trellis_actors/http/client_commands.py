"""``trellis submit``, ``trellis tasks …``, ``schedules …`` and ``queues …``: client commands over
the HTTP API, made with :class:`trellis_actors.client.Client`.

Results go to stdout (ids, tables, JSON with ``--json``); progress and messages to stderr.
Errors are the client's typed errors; ``trellis`` turns them into exit statuses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import rules
from .._time import iso
from ..errors import ScheduleNotFound, ValidationError, WaitTimeout
from ..lifecycle import Task
from ..scheduling.model import Schedule

if TYPE_CHECKING:
    from ..client import Client

DEFAULT_URL = "http://127.0.0.1:8080"
#: How often ``submit --wait`` redraws its progress: each wait is a long poll of this long,
#: answered at once when the task ends.
PROGRESS_EVERY = 1.0
#: The exit status of ``submit --wait`` when the task did not complete.
EXIT_FAILED = 1

MakeCommand = Callable[..., argparse.ArgumentParser]


def add_commands(commands: Any, make: MakeCommand) -> argparse.ArgumentParser:
    """Add ``submit``, ``tasks``, ``schedules`` and ``queues`` to ``trellis``'s commands;
    returns the parent parser of every client command (``--url``, ``--token``, ``--json``)."""
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
    show = make(actions, "show", "show a task and its history", client)
    show.add_argument("id", help="the task id")
    show.set_defaults(run=show_command)
    _add_bulk_commands(actions, make, client)
    _add_schedule_commands(commands, make, client)
    nodes = make(commands, "nodes", "list the nodes of the cluster a server belongs to", client)
    nodes.set_defaults(run=nodes_command)
    queues = make(commands, "queues", "list, pause or resume queues on a server")
    actions = queues.add_subparsers(dest="action", metavar="ACTION", required=True)
    make(actions, "list", "list queues: depth, tasks per status, paused", client).set_defaults(
        run=queues_list_command
    )
    for name, help, run in (
        ("pause", "pause a queue on every node: its tasks wait", queues_pause_command),
        ("resume", "resume a paused queue", queues_resume_command),
    ):
        action = make(actions, name, help, client)
        action.add_argument("queue", metavar="QUEUE", help="the queue's name")
        action.set_defaults(run=run)
    return client


def _add_bulk_commands(actions: Any, make: MakeCommand, client: argparse.ArgumentParser) -> None:
    """``tasks cancel``, ``requeue`` and ``purge``: one task by id, or every task a filter
    selects (``--status``, ``--type``, ``--queue``, ``--created-after/-before``)."""
    for name, help, run in (
        (
            "cancel",
            "cancel a task, or every task on its way a filter selects (running handlers are "
            "interrupted)",
            cancel_command,
        ),
        ("requeue", "send a dead task, or every dead task a filter selects, back", requeue_command),
        ("purge", "delete every ended task a filter selects, with its history", purge_command),
    ):
        action = make(actions, name, help, client)
        if name != "purge":
            action.add_argument("id", nargs="?", help="the task id (or give a filter)")
        action.add_argument("--status", action="append", help="this status (repeat for several)")
        action.add_argument("--type", help="only this task type")
        action.add_argument("--queue", help="only this queue")
        action.add_argument(
            "--created-after", metavar="ISO8601", help="only tasks created at or after this"
        )
        action.add_argument(
            "--created-before", metavar="ISO8601", help="only tasks created before this"
        )
        action.add_argument("--dry-run", action="store_true", help="say how many tasks, touch none")
        action.set_defaults(run=run)


def nodes_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        found = client.nodes()
    if args.json:
        _print_json([node.to_dict() for node in found])
        return 0
    rows = [("ID", "STATE", "HOST", "PID", "WORKERS", "BUSY", "QUEUES", "SEEN")]
    for node in found:
        queues = "*" if node.queues is None else ",".join(node.queues)
        counts = (str(node.pid), str(node.workers), str(node.busy))
        rows.append((node.id, node.state, node.host, *counts, queues, iso(node.seen_at) or ""))
    _print_table(rows)
    return 0


def _add_schedule_commands(
    commands: Any, make: MakeCommand, client: argparse.ArgumentParser
) -> None:
    schedules = make(commands, "schedules", "list, add, pause, resume, run or remove schedules")
    actions = schedules.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = make(actions, "list", "list schedules by name", client)
    listing.set_defaults(run=schedules_list_command)

    add = make(actions, "add", "create a schedule that submits tasks of a type", client)
    add.add_argument(
        "name", metavar="NAME", help="unique: 1-128 letters, digits, '_', '.', ':' or '-'"
    )
    add.add_argument("task_type", metavar="TASK_TYPE", help="what each fire submits, e.g. echo")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--every", metavar="DURATION", help="an interval: seconds, or 30s, 5m, 2h, 1d"
    )
    when.add_argument("--cron", metavar="EXPR", help="five cron fields, e.g. '0 2 * * *'")
    when.add_argument("--at", metavar="ISO8601", help="once, at this time (UTC if naive)")
    add.add_argument("--timezone", metavar="TZ", help="the IANA zone of --cron (default UTC)")
    add.add_argument(
        "--payload", metavar="JSON|@FILE", help="each task's payload: JSON text, @file or @-"
    )
    add.add_argument("--queue", help="the tasks' queue (default: the type's)")
    add.add_argument("--priority", type=int, metavar="N", help="the tasks' priority (default 0)")
    add.add_argument(
        "--misfire",
        choices=("skip", "run_once"),
        help="slots missed while no node ran: skip them (default) or run once",
    )
    add.add_argument("--paused", action="store_true", help="create it paused")
    add.set_defaults(run=schedules_add_command)

    for name, help, run in (
        ("pause", "pause a schedule: it fires nothing until resumed", schedules_pause_command),
        ("resume", "resume a schedule from its next slot", schedules_resume_command),
        ("rm", "delete a schedule (the tasks it created stay)", schedules_rm_command),
        ("run", "fire a schedule now, outside its slots", schedules_run_command),
    ):
        action = make(actions, name, help, client)
        action.add_argument("schedule", metavar="ID_OR_NAME", help="the schedule's id or name")
        action.set_defaults(run=run)


def _client(args: argparse.Namespace) -> Client:
    from ..client import Client  # httpx loads only for the client commands

    return Client(args.url, token=args.token)


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
            raise ValidationError(
                f"--payload: cannot read {name}: {exc.strerror}", field="payload"
            ) from None
    try:
        return rules.parse_json(text, "payload")  # the server's rules, said before sending
    except ValidationError as exc:
        raise ValidationError(f"--payload: {source}: {exc}", field="payload") from None


def submit_command(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    options: dict[str, Any] = {}
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
            options[field] = value
    with _client(args) as client:
        submitted = client.submit(args.type, payload, **options)
        if not args.json:
            print(submitted.id, flush=True)
        _say(f"submitted {submitted.type} task {submitted.id} to queue {submitted.queue}")
        if not args.wait:
            if args.json:
                _print_json(submitted.to_dict())
            return 0
        task = _wait(client, submitted)
    if args.json:
        _print_json(task)
    elif task["status"] == "completed":
        _print_json(task["result"])
    return _report_end(task)


def _wait(client: Client, task: Task) -> dict[str, Any]:
    """The task once it has ended, with its progress shown meanwhile: long polls of a
    second each, so the end is told at once."""
    bar = ProgressBar(sys.stderr)
    while not task.status.terminal:
        bar.show(task.to_dict())
        try:
            task = client.wait(task.id, timeout=PROGRESS_EVERY)
        except WaitTimeout:
            task = client.get(task.id)
    shown = task.to_dict()
    bar.show(shown)
    bar.close()
    return shown


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
        found = client.list(
            status=args.status,
            type=args.type,
            queue=args.queue,
            limit=args.limit,
            cursor=args.cursor,
        )
    page: dict[str, Any] = {
        "items": [t.to_dict() for t in found.items],
        "next_cursor": found.next_cursor,
    }
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
        task = client.get(args.id).to_dict()
        events = [event.to_dict() for event in client.events(args.id)]
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
    with _client(args) as client:
        if _filter(args) is None:
            return _moved(args, client.cancel(args.id), "cancelled")
        return _bulk(args, client.cancel_many, "cancelled")


def requeue_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if _filter(args) is None:
            return _moved(args, client.requeue(args.id), "requeued")
        return _bulk(args, client.requeue_many, "requeued")


def purge_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _bulk(args, client.purge_many, "purged")


def _filter(args: argparse.Namespace) -> dict[str, Any] | None:
    """The filter the options give (None: none given, so one task by id); a usage error
    for both an id and a filter, or neither."""
    given = {
        name: value
        for name in ("status", "type", "queue", "created_after", "created_before")
        if (value := getattr(args, name)) is not None
    }
    task_id = getattr(args, "id", None)
    if given and task_id is not None:
        raise ValidationError(
            "give a task id or a filter (--status, --type, ...), not both", field="id"
        )
    if not given and task_id is None:
        if args.action == "purge":
            return given  # the rules say what a filter needs
        raise ValidationError(
            "give a task id, or a filter: --status, --type, --queue, --created-after/-before",
            field="id",
        )
    return given or None


def _bulk(args: argparse.Namespace, do: Callable[..., int], done: str) -> int:
    filter = _filter(args) or {}
    touched = do(dry_run=args.dry_run, **filter)
    if args.json:
        _print_json({"touched": touched, "dry_run": args.dry_run})
    else:
        what = "task" if touched == 1 else "tasks"
        print(f"{touched} {what} would be {done}" if args.dry_run else f"{done} {touched} {what}")
    return 0


def _moved(args: argparse.Namespace, task: Task, done: str) -> int:
    if args.json:
        _print_json(task.to_dict())
    else:
        print(f"{done} task {task.id} (now {task.status.value})")
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2 if sys.stdout.isatty() else None), flush=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- queues -----------------------------------------------------------------------------


def queues_list_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        items = client.list_queues()
    if args.json:
        _print_json({"items": items})
        return 0
    rows = [("QUEUE", "DEPTH", "RUNNING", "PAUSED")]
    for queue in items:
        paused = f"since {queue['paused_at']}" if queue["paused"] else "no"
        rows.append((queue["name"], str(queue["depth"]), str(queue["counts"]["running"]), paused))
    _print_table(rows)
    return 0


def queues_pause_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        queue = client.pause_queue(args.queue)
    return _queue_moved(args, queue, "paused")


def queues_resume_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        queue = client.resume_queue(args.queue)
    return _queue_moved(args, queue, "resumed")


def _queue_moved(args: argparse.Namespace, queue: dict[str, Any], done: str) -> int:
    if args.json:
        _print_json(queue)
    else:
        print(f"{done} queue {queue['name']} ({queue['depth']} waiting)")
    return 0


# -- schedules --------------------------------------------------------------------------


def schedules_list_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        listing = {"items": [s.to_dict() for s in client.list_schedules()]}
    if args.json:
        _print_json(listing)
        return 0
    rows = [("NAME", "SPEC", "NEXT RUN", "LAST RUN", "PAUSED")]
    for schedule in listing["items"]:
        rows.append(
            (
                schedule["name"],
                schedule["spec"],
                schedule["next_run_at"] or "-",
                schedule["last_run_at"] or "-",
                "yes" if schedule["paused"] else "no",
            )
        )
    _print_table(rows)
    return 0


def schedules_add_command(args: argparse.Namespace) -> int:
    if args.timezone is not None and args.cron is None:
        raise ValidationError("--timezone only applies to --cron schedules", field="timezone")
    payload = _payload(args.payload)
    spec: dict[str, Any] = {}
    for field in ("every", "cron", "timezone", "at", "queue", "priority", "misfire"):
        if (value := getattr(args, field)) is not None:
            spec[field] = value
    if args.paused:
        spec["paused"] = True
    with _client(args) as client:
        schedule = client.add_schedule(args.name, args.task_type, payload, **spec).to_dict()
    if args.json:
        _print_json(schedule)
    else:
        print(schedule["id"], flush=True)
    _say(f"created schedule {schedule['name']} ({schedule['spec']}): {_next(schedule)}")
    return 0


def schedules_pause_command(args: argparse.Namespace) -> int:
    return _schedule_move(args, "pause", "paused")


def schedules_resume_command(args: argparse.Namespace) -> int:
    return _schedule_move(args, "resume", "resumed")


def _schedule_move(args: argparse.Namespace, action: str, done: str) -> int:
    with _client(args) as client:
        found = _find_schedule(client, args.schedule)
        move = client.pause_schedule if action == "pause" else client.resume_schedule
        schedule = move(found.id).to_dict()
    if args.json:
        _print_json(schedule)
    else:
        when = "" if schedule["paused"] else f"; {_next(schedule)}"
        print(f"{done} schedule {schedule['name']} ({schedule['id']}){when}")
    return 0


def schedules_rm_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        schedule = _find_schedule(client, args.schedule)
        client.delete_schedule(schedule.id)
    if args.json:
        _print_json(schedule.to_dict())  # as it was
    else:
        print(f"deleted schedule {schedule.name} ({schedule.id})")
    return 0


def schedules_run_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        schedule = _find_schedule(client, args.schedule)
        task = client.run_schedule(schedule.id)
    if args.json:
        _print_json(task.to_dict())
    else:
        print(task.id, flush=True)
    _say(f"fired schedule {schedule.name}: {task.type} task {task.id} in queue {task.queue}")
    return 0


def _find_schedule(client: Client, ref: str) -> Schedule:
    """The schedule whose id is ``ref``, or else whose name is (names are unique)."""
    schedules = client.list_schedules()
    for key in ("id", "name"):
        for schedule in schedules:
            if getattr(schedule, key) == ref:
                return schedule
    raise ScheduleNotFound(f"no schedule with id or name {ref!r}; see `trellis schedules list`")


def _next(schedule: dict[str, Any]) -> str:
    if schedule["paused"]:
        return "paused"
    if schedule["next_run_at"] is None:
        return "fires no more"
    return f"next run at {schedule['next_run_at']}"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip())
