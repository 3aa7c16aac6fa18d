"""The ``trellis`` command line (also ``python -m trellis_actors``).

Node commands run a runtime in this process: ``serve`` (API and workers), ``worker``
(workers only), ``migrate``. Client commands talk to a server over HTTP: ``submit``,
``tasks`` and ``schedules``. Exit status: 0 success, 1 the task (or operation) failed, 2 bad
arguments or a request the server refused as invalid, 3 server unreachable or unavailable,
4 not authorised (missing or wrong token).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .cli_env import EnvironmentParser, bind_environment
from .errors import (
    ClientError,
    ScheduleNotFound,
    TaskNotFound,
    Unauthorized,
    Unavailable,
    UnknownTaskType,
    ValidationError,
)
from .workflows import NotAWorkflow, WorkflowEnded

#: Defaults of ``trellis serve``'s limits, kept here to keep the CLI's start light (a
#: test checks them against http.server's and rules').
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_EVENT_STREAMS = 100
MAX_PAGE_BYTES = 8 * 1024 * 1024

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away
#: What a client command's error exits with; anything else (a 409 conflict, ...) is 1.
_CLIENT_EXITS: tuple[tuple[tuple[type[Exception], ...], int], ...] = (
    ((ValidationError, UnknownTaskType, TaskNotFound, ScheduleNotFound), EXIT_USAGE),
    ((Unavailable,), EXIT_UNREACHABLE),
    ((Unauthorized,), EXIT_AUTH),
)
_CLIENT_ERRORS = (
    ClientError,
    ValidationError,
    UnknownTaskType,
    TaskNotFound,
    ScheduleNotFound,
    WorkflowEnded,
    NotAWorkflow,
)

DEFAULT_STORE = "sqlite:///trellis.db"
EXIT_STATUSES = """\
exit status:
  0  success
  1  the task ended failed, dead or cancelled (submit --wait), or the operation failed
  2  bad arguments, or a request the server refused as invalid (unknown type, id, ...)
  3  the server is unreachable or unavailable
  4  not authorised: missing or wrong API token, or one without the scope needed
"""


class UsageError(Exception):
    """A bad argument found after parsing (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``trellis`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``trellis tasks list | head -1``): stop quietly. Python
        # flushes stdout again at exit, so point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        return _fail(f"{parser.prog} {args.command}: {exc}", EXIT_USAGE)
    except _CLIENT_ERRORS as exc:
        return _fail(f"error: {_explain(exc)}", _exit_status(exc))
    except KeyboardInterrupt:
        return 130


def _exit_status(error: Exception) -> int:
    for kinds, status in _CLIENT_EXITS:
        if isinstance(error, kinds):
            return status
    if isinstance(error, ClientError) and error.status == 405:
        return EXIT_USAGE  # a request this server does not take
    return EXIT_FAILED


def _explain(error: Exception) -> str:
    """The error's message, with the next step where there is one."""
    message = str(error)
    if isinstance(error, ValidationError | ClientError) and error.field:
        message = f"{message} (field: {error.field})"
    if isinstance(error, Unauthorized):
        message += "; pass --token or set TRELLIS_API_TOKEN to the server's API token"
    elif isinstance(error, Unavailable) and error.status is None:
        message += "; set --url or TRELLIS_URL"
    return message


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


# -- the parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .http import client_commands as cc
    from .http import workflow_commands as wc

    parser = argparse.ArgumentParser(
        prog="trellis",
        description="Trellis: background tasks on trio. Run a node, or talk to one over HTTP.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trellis {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=EnvironmentParser
    )

    node = argparse.ArgumentParser(add_help=False)
    node.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="the App with your task types, e.g. examples.shop:app (default: the built-in "
        "echo and sleep types)",
    )
    node.add_argument(
        "--enable-http-check",
        action="store_true",
        help="add the http_check task type, under the default policy: GET and HEAD of "
        "public addresses only (an App can pass its own HttpCheckPolicy instead)",
    )
    node.add_argument(
        "--workers", type=_count, default=8, metavar="N", help="worker count (default 8)"
    )
    node.add_argument(
        "--threads",
        type=_count,
        metavar="N",
        help="most plain-def handlers running at once, in threads (default: the worker count)",
    )
    node.add_argument(
        "--processes",
        type=_count,
        metavar="N",
        help="pool processes for executor='process' handlers (default: one per core)",
    )
    node.add_argument(
        "--queues",
        type=_names,
        metavar="A,B",
        help="work only these queues, comma-separated (default: every queue)",
    )
    node.add_argument(
        "--grace-period",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="on shutdown, how long running tasks may finish before they are given back "
        "to the queue (default 10)",
    )
    for status, example, what in (
        ("completed", "7d", "completed tasks"),
        ("failed", "30d", "failed tasks whose type keeps no dead letters"),
        ("dead", "30d", "dead-lettered tasks"),
        ("cancelled", "7d", "cancelled tasks"),
    ):
        node.add_argument(
            f"--retain-{status}",
            type=_duration,
            metavar="DURATION",
            help=f"prune {what} older than this, e.g. {example} (default: keep them)",
        )
    node.add_argument(
        "--log-format",
        choices=("json", "console"),
        help="how log lines look (default: console on a terminal, json otherwise)",
    )
    node.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="the least severe lines logged (default info)",
    )
    node.add_argument(
        "--log-tasks",
        default="all",
        choices=("all", "failures", "none"),
        help="a line per finished attempt: all (default), failures (retries, failures, dead "
        "letters) or none",
    )
    _runtime_options(node)

    serve = _command(commands, "serve", "run the HTTP API and workers (one node)", node)
    serve.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"memory://, sqlite:///path.db or postgresql://… (default {DEFAULT_STORE}, a "
        "file in the working directory)",
    )
    serve.add_argument(
        "--bind",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where the API listens (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    serve.add_argument(
        "--token-file",
        metavar="PATH",
        help="API tokens with scopes (read, submit, operate, admin), a TOML file of "
        "[[token]] tables; see docs/security.md",
    )
    serve.add_argument(
        "--token",
        help="one admin token (discouraged: other users see it in the process list; set the "
        "variable, or use --token-file)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default="",
        metavar="IPS",
        help="comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-Proto and X-Forwarded-For are believed, or * (default: none)",
    )
    serve.add_argument(
        "--session-idle",
        type=_duration,
        default=12 * 3600.0,
        metavar="DURATION",
        help="a web UI login unused this long ends (default 12h)",
    )
    serve.add_argument(
        "--session-max-age",
        type=_duration,
        default=7 * 24 * 3600.0,
        metavar="DURATION",
        help="a web UI login ends this long after it began, used or not (default 7d)",
    )
    serve.add_argument(
        "--metrics-public", action="store_true", help="serve /metrics without the token"
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the server answers to besides IP addresses, localhost and the "
        "bind host; .example.com for it and its subdomains; repeatable",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin (https://app.example.com) whose pages may call the API; repeatable",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback address without a token (anyone who reaches it can "
        "submit and cancel tasks)",
    )
    serve.add_argument(
        "--max-body",
        type=_count,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest request body; larger ones get 413 (default 1048576)",
    )
    serve.add_argument(
        "--max-connections",
        type=_count,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="most requests in progress at once, open event streams included; more get "
        f"503 (default {DEFAULT_MAX_CONNECTIONS})",
    )
    serve.add_argument(
        "--max-event-streams",
        type=_count,
        default=DEFAULT_MAX_EVENT_STREAMS,
        metavar="N",
        help="most GET /events streams open at once; more get 503 "
        f"(default {DEFAULT_MAX_EVENT_STREAMS})",
    )
    serve.add_argument(
        "--max-page-bytes",
        type=_count,
        default=MAX_PAGE_BYTES,
        metavar="BYTES",
        help="most bytes in one page of GET /tasks; the rest is on the next page "
        f"(default {MAX_PAGE_BYTES})",
    )
    serve.set_defaults(run=lambda args: _node(args, http=True))

    worker = _command(
        commands,
        "worker",
        "run workers only (no API; --bind serves probes): an extra node sharing a PostgreSQL store",
        node,
    )
    worker.add_argument(
        "--store",
        metavar="URL",
        help="postgresql://… shared with the other nodes (required)",
    )
    # -- the nodes registry and probes ------------------------------------------------
    worker.add_argument(
        "--bind",
        default=None,
        metavar="HOST:PORT",
        help="serve the node's probes here: /health, /readyz and /metrics, without a token "
        "(no API, no UI; port 0 picks a free one; default: no HTTP at all)",
    )
    for command in (serve, worker):
        command.add_argument(
            "--heartbeat",
            type=_seconds,
            default=5.0,
            metavar="SECONDS",
            help="seconds between this node's heartbeats in the nodes registry (default 5; "
            "a node not seen for three is shown lost; 0: none)",
        )
    worker.set_defaults(run=lambda args: _node(args, http=False))

    migrate = _command(commands, "migrate", "create or upgrade a store's schema")
    migrate.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"the store to migrate (default {DEFAULT_STORE})",
    )
    migrate.set_defaults(run=_migrate)
    for command in (serve, worker, migrate):  # last: options added above all get a variable
        bind_environment(command)

    wc.add_workflow_commands(commands, _command, cc.add_commands(commands, _command))
    return parser


def _command(
    commands: Any, name: str, help: str, *parents: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=list(parents),
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _runtime_options(node: argparse.ArgumentParser) -> None:
    """Options for the runtime's timing and claiming, each a RuntimeConfig field (which
    checks it: a value it refuses is a usage error)."""
    from dataclasses import fields

    from .runtime.config import RuntimeConfig

    default = {field.name: field.default for field in fields(RuntimeConfig)}
    node.add_argument(
        "--lease",
        type=_seconds,
        default=default["lease"],
        metavar="SECONDS",
        help="how long a claimed task is held without renewal before another node may run "
        "it again; renewed every third of it while it runs (default %(default)g)",
    )
    node.add_argument(
        "--poll-interval",
        type=_seconds,
        default=default["poll_interval"],
        metavar="SECONDS",
        help="how often an idle node looks for work that no notification announced "
        "(default %(default)g)",
    )
    node.add_argument(
        "--claim-ahead",
        type=_count,
        default=default["claim_ahead"],
        metavar="N",
        help="most fast tasks (under 5 ms) claimed ahead for each idle worker "
        "(default %(default)s)",
    )
    node.add_argument(
        "--prefetch",
        type=_count,
        default=default["prefetch"],
        metavar="N",
        help="most fast tasks a worker takes at once (default %(default)s)",
    )
    node.add_argument(
        "--janitor-interval",
        type=_seconds,
        default=default["janitor_interval"],
        metavar="SECONDS",
        help="how often the janitor recovers expired leases and prunes old tasks "
        "(default %(default)g)",
    )
    node.add_argument(
        "--worker-idle-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the worker watchdog: a worker with no sign of life this long is restarted "
        "(default: off; 0 is off)",
    )
    node.add_argument(
        "--blocked-loop-warning",
        type=_seconds,
        default=default["blocked_loop_warning"],
        metavar="SECONDS",
        help="warn when an async handler blocks the event loop this long (default "
        "%(default)g; 0 is off)",
    )
    node.add_argument(
        "--node-name",
        metavar="NAME",
        help="this node's name in leases, logs and /debug (default host:pid:random)",
    )
    node.add_argument(
        "--log-transitions",
        action="store_true",
        help="a debug line for each other transition of a task (queued, running, ...)",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds >= 0")
    return value


def _duration(text: str) -> float:
    from .errors import ValidationError
    from .scheduling.model import parse_every

    try:
        return parse_every(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration like 3600, 12h or 7d (1 second to 10 years)"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one queue name")
    return names


# -- node commands ----------------------------------------------------------------------


def load_app(spec: str | None) -> Any:
    """The :class:`~trellis_actors.App` named ``module:attr`` (the working directory is on
    the import path, as for ``python -m``); the default App when ``spec`` is None."""
    from .app import App

    if spec is None:
        return App()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--app {spec!r} must look like module:attribute, e.g. examples.shop:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--app: cannot import module {module_name!r}: {exc}") from None
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"--app: module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(app, App):
        raise UsageError(f"--app: {spec} is a {type(app).__name__}, not a trellis_actors.App")
    return app


def node_app(args: argparse.Namespace) -> Any:
    """The App a node runs: ``--app`` (or the default), with ``http_check`` added under
    the default policy if ``--enable-http-check`` asks and the App has none."""
    app = load_app(args.app)
    if args.enable_http_check and "http_check" not in app:
        app.enable_http_check()
    return app


def describe_store(url: str) -> str:
    """How a store URL is shown to people: which file a SQLite store uses, say."""
    if url.startswith("sqlite:"):
        from .errors import ConfigurationError
        from .stores.sqlite import parse_url

        try:
            path, _ = parse_url(url)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
        shown = path if path == ":memory:" else os.path.abspath(path)
        return f"{url} (SQLite file {shown})"
    if url == "memory://":
        return "memory:// (in this process only: tasks are lost when it stops)"
    from .stores import redact

    return redact(url)


def _node(args: argparse.Namespace, *, http: bool) -> int:
    import trio

    from .errors import ConfigurationError
    from .logging import configure_logging
    from .runtime.janitor import Retention
    from .runtime.runtime import Runtime

    if not http:
        _check_worker_store(args.store)
    app = node_app(args)
    from .http import node  # the server stack, once the arguments look right

    try:
        runtime = Runtime(
            app,
            store=args.store,
            workers=args.workers,
            threads=args.threads,
            **({} if args.processes is None else {"processes": args.processes}),
            queues=args.queues,
            grace_period=args.grace_period,
            log_tasks=args.log_tasks,
            log_transitions=args.log_transitions,
            lease=args.lease,
            poll_interval=args.poll_interval,
            claim_ahead=args.claim_ahead,
            prefetch=args.prefetch,
            janitor_interval=args.janitor_interval,
            worker_idle_timeout=args.worker_idle_timeout or None,
            blocked_loop_warning=args.blocked_loop_warning or None,
            node=args.node_name,
            retention=Retention(
                completed=args.retain_completed,
                failed=args.retain_failed,
                dead=args.retain_dead,
                cancelled=args.retain_cancelled,
            ),
            heartbeat=args.heartbeat or None,
        )
        server = node.server_config(args) if http else None
        probes = None if http else args.bind
        if probes is not None:
            from .http.server import check_bind

            check_bind(probes)
    except (ConfigurationError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    plan = node.NodePlan(runtime, describe_store(args.store), server, probes)
    configure_logging(args.log_format, level=args.log_level)
    from .observability.otel import configure_tracing

    configure_tracing()
    _tune_gc()
    return trio.run(node.run_node, plan)


def _tune_gc() -> None:
    """Garbage collection for a long-running node (``serve`` and ``worker`` only: an
    embedding program keeps its own settings).

    Every task and request makes short-lived container objects, and the default threshold
    (700) then runs a collection every few tasks; every tenth of those scans older objects,
    and in turn the whole heap, most of it the imported server stack, which never becomes
    garbage. So: collect young objects after 10,000 allocations, and move everything alive
    at start-up out of the collector's sight (``gc.freeze``). In ``bench/http.py`` this
    takes about a tenth off the server's CPU time per request.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _check_worker_store(store: str | None) -> None:
    if not store:
        raise UsageError("--store is required: the postgresql://… URL the other nodes share")
    if store.startswith("memory:"):
        raise UsageError(
            "a worker on memory:// would see no tasks: use the postgresql://… store the server uses"
        )
    if store.startswith("sqlite:"):
        print(
            "warning: a SQLite store serves one node; an extra worker on the same file "
            "competes for its lock. Use PostgreSQL to run several nodes.",
            file=sys.stderr,
        )


def _migrate(args: argparse.Namespace) -> int:
    import trio

    from .errors import ConfigurationError
    from .stores import open_store

    shown = describe_store(args.store)
    try:
        store = open_store(args.store)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None

    async def migrate() -> None:
        await store.open()  # opening applies the migrations
        await store.close()

    try:
        trio.run(migrate)
    except Exception as exc:  # the store's own errors (a refused connection, say)
        return _fail(f"error: cannot migrate {shown}: {exc}", EXIT_FAILED)
    print(f"store {shown} is at the latest schema")
    return 0


if __name__ == "__main__":  # the docs' table of variables: see cli_env
    from .cli_env import main as env_table

    raise SystemExit(env_table(build_parser(), sys.argv[1:]))
