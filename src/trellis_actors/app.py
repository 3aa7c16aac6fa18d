"""Declaring task types: ``App`` and ``@app.task``."""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypedDict, overload

from typing_extensions import Unpack

from ._backoff import Backoff
from .builtin_tasks import BUILTINS
from .contracts import ANY_JSON, Contract, P, R, TaskHandle, caller_namespace, contract_of
from .decisions import TypeLimit, parse_rate
from .errors import ConfigurationError, UnknownTaskType, ValidationError
from .http_check import TASK_OPTIONS as HTTP_CHECK_OPTIONS
from .http_check import HttpCheckPolicy, http_check_handler
from .rules import MAX_TIMEOUT
from .scheduling.define import ScheduleDefinition, define

if TYPE_CHECKING:
    from .context import TaskContext
    from .workflow_context import WorkflowContext

#: ``async def handler(ctx, payload)`` or, for the thread and process executors, a plain
#: ``def handler(ctx, payload)``.
Handler: TypeAlias = (
    Callable[["TaskContext", Any], Awaitable[Any]] | Callable[["TaskContext", Any], Any]
)

#: Where a handler runs: in the event loop, in a worker thread, or in a pool process.
EXECUTORS = ("async", "thread", "process")

#: Backoff between retries unless a task type says otherwise.
DEFAULT_RETRY_BACKOFF = Backoff(initial=1.0, maximum=300.0, multiplier=2.0, jitter=0.2)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


class Retry(Exception):  # raised to ask for a retry, as in Celery and Dramatiq
    """Raise from a handler to ask for another attempt, after ``delay`` seconds if given."""

    def __init__(self, delay: float | None = None, message: str = "retry requested") -> None:
        if delay is not None and not 0 <= delay < math.inf:  # NaN fails this too
            raise ValueError("Retry delay must be a finite number of seconds >= 0")
        self.delay = delay
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TaskType:
    """A registered task type and its policies."""

    name: str
    handler: Handler
    queue: str = "default"
    max_attempts: int = 3
    backoff: Backoff = DEFAULT_RETRY_BACKOFF
    timeout: float | None = None
    #: Longest an attempt may ever run, in seconds: it caps ``timeout`` (the type's and
    #: each task's), and a submission asking for a longer ``timeout`` is refused.
    max_duration: float | None = None
    concurrency: int | None = None  # held at once, across every node sharing the store
    #: At most N starts per second, minute or hour ("100/m"), across every node.
    rate_limit: str | None = None
    dead_letter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    description: str | None = None
    #: "async" (an ``async def`` in the event loop), "thread" (a ``def`` in a worker
    #: thread) or "process" (a module-level ``def`` in a pool process).
    executor: str = "async"
    #: What the handler's annotations say its payload and result are (any JSON if none).
    contract: Contract = ANY_JSON
    #: A durable workflow (``@app.workflow``): its handler takes a ``WorkflowContext``
    #: and is replayed against its history (see :mod:`trellis_actors.workflow_context`).
    workflow: bool = False

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt under this type's policy."""
        if isinstance(error, ValidationError):
            return False  # the same payload will fail the same way
        return isinstance(error, (Retry, *self.retry_on))

    def limit(self) -> TypeLimit | None:
        """The type's cluster-wide limits, or None when it has none."""
        if self.concurrency is None and self.rate_limit is None:
            return None
        rate, per = (None, 1.0) if self.rate_limit is None else parse_rate(self.rate_limit)
        return TypeLimit(self.concurrency, rate, per)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queue": self.queue,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "max_duration": self.max_duration,
            "concurrency": self.concurrency,
            "rate_limit": self.rate_limit,
            "dead_letter": self.dead_letter,
            "backoff": {
                "initial": self.backoff.initial,
                "maximum": self.backoff.maximum,
                "multiplier": self.backoff.multiplier,
                "jitter": self.backoff.jitter,
            },
            "retry_on": [exc.__name__ for exc in self.retry_on],
            "description": self.description,
            "executor": self.executor,
            **self.contract.schemas(),
        }


class TaskPolicy(TypedDict, total=False):
    """The options of ``@app.task(...)`` besides its name (those of ``@app.periodic``)."""

    queue: str
    max_attempts: int
    backoff: Backoff
    timeout: float | None
    max_duration: float | None
    concurrency: int | None
    rate_limit: str | None
    dead_letter: bool
    retry_on: type[BaseException] | tuple[type[BaseException], ...]
    executor: str | None


class TaskOptions(TaskPolicy, total=False):
    """The options of ``@app.task(...)``."""

    name: str | None


class WorkflowOptions(TypedDict, total=False):
    """The options of ``@app.workflow(...)``: those of a task that suit a workflow
    (``max_attempts`` counts runs of the function that raised, not continuations)."""

    name: str | None
    queue: str
    max_attempts: int
    backoff: Backoff
    timeout: float | None
    dead_letter: bool
    retry_on: type[BaseException] | tuple[type[BaseException], ...]


class RegisterWorkflow(Protocol):
    """What ``@app.workflow(...)`` with options returns."""

    def __call__(self, fn: Callable[[WorkflowContext, P], Awaitable[R]], /) -> TaskHandle[P, R]: ...


class Register(Protocol):
    """What ``@app.task(...)`` with options returns: a decorator that makes a handle."""

    @overload
    def __call__(
        self, fn: Callable[[TaskContext, P], Awaitable[R]], /
    ) -> TaskHandle[P, R]: ...  # an async def: its result is what it returns once awaited
    @overload
    def __call__(self, fn: Callable[[TaskContext, P], R], /) -> TaskHandle[P, R]: ...


#: A readiness check: no arguments; ``False`` or an exception means not ready.
CheckFn: TypeAlias = Callable[[], "bool | Awaitable[bool | None] | None"]


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    name: str
    fn: CheckFn
    timeout: float


@dataclass
class App:
    """A catalog of task types. Handlers are ``async def handler(ctx, payload)``, or a plain
    ``def handler(ctx, payload)`` run in a worker thread (``executor="thread"``, the default
    for a ``def``) or in a pool process (``executor="process"``).

    ``App(builtins=True)`` (the default) includes the built-in ``echo`` and ``sleep`` types.
    ``App(http_check=HttpCheckPolicy(...))`` adds ``http_check`` as well, fenced by the
    policy (it makes the server send requests, so it is never on by default).
    """

    builtins: bool = True
    http_check: HttpCheckPolicy | None = None
    _types: dict[str, TaskType] = field(default_factory=dict, init=False, repr=False)
    _schedules: dict[str, ScheduleDefinition] = field(default_factory=dict, init=False, repr=False)
    _checks: dict[str, ReadinessCheck] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.builtins:
            for handler, options in BUILTINS:
                self.task(handler, **options)
        if self.http_check is not None:
            self.enable_http_check(self.http_check)

    def enable_http_check(self, policy: HttpCheckPolicy | None = None) -> None:
        """Register ``http_check`` under ``policy`` (the default policy if None): what
        ``trellis serve --enable-http-check`` does to the App it runs."""
        self.http_check = policy or HttpCheckPolicy()
        self.task(http_check_handler(self.http_check), **HTTP_CHECK_OPTIONS)

    @overload
    def task(
        self,
        fn: Callable[[TaskContext, P], Awaitable[R]],
        /,
        **options: Unpack[TaskOptions],
    ) -> TaskHandle[P, R]: ...
    @overload
    def task(
        self, fn: Callable[[TaskContext, P], R], /, **options: Unpack[TaskOptions]
    ) -> TaskHandle[P, R]: ...
    @overload
    def task(self, fn: None = None, /, **options: Unpack[TaskOptions]) -> Register: ...
    def task(self, fn: Handler | None = None, /, **options: Unpack[TaskOptions]) -> Any:
        """Register ``async def handler(ctx, payload)`` (or a ``def``); usable with or
        without arguments, it returns a :class:`~trellis_actors.contracts.TaskHandle`.
        ``executor`` is "async" (the default for an ``async def``), "thread" (the
        default for a ``def``) or "process". The payload and return annotations are the
        type's contract (see :mod:`trellis_actors.contracts`)."""
        if fn is not None:
            return self._register(fn, options, caller_namespace(1), options.get("name"))

        def register(handler: Handler) -> TaskHandle[Any, Any]:
            return self._register(handler, options, caller_namespace(1), options.get("name"))

        return register

    def _register(
        self,
        handler: Handler,
        options: TaskPolicy,
        namespace: dict[str, Any] | None,
        name: str | None = None,
        *,
        workflow: bool = False,
    ) -> TaskHandle[Any, Any]:
        if isinstance(handler, TaskHandle):
            handler = handler.task_type.handler  # registered again, under another name
        retry_on = options.get("retry_on", (Exception,))
        task_type = TaskType(
            name=name or handler.__name__,
            handler=handler,
            queue=options.get("queue", "default"),
            max_attempts=options.get("max_attempts", 3),
            backoff=options.get("backoff", DEFAULT_RETRY_BACKOFF),
            timeout=options.get("timeout"),
            max_duration=options.get("max_duration"),
            concurrency=options.get("concurrency"),
            rate_limit=options.get("rate_limit"),
            dead_letter=options.get("dead_letter", True),
            retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
            description=inspect.getdoc(handler),
            executor=options.get("executor") or _default_executor(handler),
            contract=contract_of(handler, namespace),
            workflow=workflow,
        )
        self.add(task_type)
        return TaskHandle(task_type)

    @overload
    def workflow(
        self,
        fn: Callable[[WorkflowContext, P], Awaitable[R]],
        /,
        **options: Unpack[WorkflowOptions],
    ) -> TaskHandle[P, R]: ...
    @overload
    def workflow(
        self, fn: None = None, /, **options: Unpack[WorkflowOptions]
    ) -> RegisterWorkflow: ...
    def workflow(self, fn: Any = None, /, **options: Unpack[WorkflowOptions]) -> Any:
        """Register ``async def flow(wf, payload)`` as a durable workflow; usable with or
        without arguments, it returns a :class:`~trellis_actors.contracts.TaskHandle`.
        Submitted like a task, it runs as a task of its own whose steps are tasks too;
        its function is replayed against its history to go on after each step, sleep and
        signal (see :class:`~trellis_actors.WorkflowContext`)."""
        namespace = caller_namespace(1)

        def register(handler: Any) -> TaskHandle[Any, Any]:
            if not inspect.iscoroutinefunction(inspect.unwrap(handler)):
                raise ConfigurationError(
                    f"workflow {getattr(handler, '__name__', handler)!r} must be an "
                    "async def flow(wf, payload)"
                )
            # WorkflowOptions is a subset of TaskPolicy (with name), not known to mypy as one.
            policy: TaskPolicy = {k: v for k, v in options.items() if k != "name"}  # type: ignore[assignment]
            policy["executor"] = "async"
            return self._register(handler, policy, namespace, options.get("name"), workflow=True)

        return register if fn is None else register(fn)

    def periodic(
        self,
        *,
        every: float | str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        at: Any = None,
        name: str | None = None,
        payload: Any = None,
        misfire: str = "skip",
        **task_options: Unpack[TaskPolicy],
    ) -> Register:
        """Register a task type and a schedule for it, in one decorator::

            @app.periodic(every="30s")
            async def refresh_cache(ctx, payload): ...

        ``task_options`` are those of :meth:`task`. The schedule is named after the task
        unless ``name`` is given; it is created or updated on start, never duplicated.
        """

        def register(handler: Handler) -> TaskHandle[Any, Any]:
            handle = self._register(handler, task_options, caller_namespace(1))
            task_name = handle.name
            self.schedule(
                name or task_name,
                handle,
                payload,
                every=every,
                cron=cron,
                timezone=timezone,
                at=at,
                misfire=misfire,
            )
            return handle

        return register

    def schedule(
        self, name: str, task_type: str | TaskHandle[Any, Any], payload: Any = None, **spec: Any
    ) -> None:
        """Declare a schedule in code: ``app.schedule("nightly", "report", cron="0 2 * * *")``.

        Takes ``every``, ``cron`` (with ``timezone``), ``at``, ``queue``, ``priority``,
        ``misfire`` and ``paused``; raises ValidationError for a bad spec.
        """
        if name in self._schedules:
            raise ConfigurationError(f"a schedule named {name!r} is already declared")
        if isinstance(task_type, TaskHandle):
            payload = task_type.contract.accept(payload)
            task_type = task_type.name
        elif task_type in self._types:
            payload = self._types[task_type].contract.accept(payload)
        self._schedules[name] = define(name, task_type, payload, **spec)

    def readiness_check(
        self, fn: CheckFn | None = None, /, *, name: str | None = None, timeout: float = 5.0
    ) -> Any:
        """Register a readiness check, a ``def`` or ``async def`` taking no arguments::

            @app.readiness_check
            async def database() -> bool: ...

        Every node runs its checks now and then (a ``def`` in a thread), each within
        ``timeout`` seconds; while one raises, returns ``False`` or runs out of time,
        ``/readyz`` answers 503 naming it."""

        def register(check: CheckFn) -> CheckFn:
            check_name = name or getattr(check, "__name__", "") or repr(check)
            if check_name in self._checks:
                raise ConfigurationError(
                    f"a readiness check named {check_name!r} is already registered; "
                    "give this one another name=..."
                )
            if not timeout > 0:
                raise ConfigurationError("a readiness check's timeout must be > 0 seconds")
            self._checks[check_name] = ReadinessCheck(check_name, check, timeout)
            return check

        return register if fn is None else register(fn)

    @property
    def readiness_checks(self) -> tuple[ReadinessCheck, ...]:
        """The readiness checks, in the order registered."""
        return tuple(self._checks.values())

    @property
    def schedules(self) -> tuple[ScheduleDefinition, ...]:
        """The schedules declared in code."""
        return tuple(self._schedules.values())

    def add(self, task_type: TaskType) -> None:
        """Register a :class:`TaskType` built by hand."""
        if not _NAME.fullmatch(task_type.name):  # not match: "$" lets a final "\n" in
            raise ConfigurationError(
                f"task type name {task_type.name!r} is not valid: use letters, digits, "
                "'_', '.', ':' or '-', starting with a letter or '_'"
            )
        if task_type.name in self._types:
            raise ConfigurationError(
                f"task type {task_type.name!r} is already registered; pass name=... "
                "to register the handler under another name"
            )
        _check_executor(task_type)
        if task_type.max_attempts < 1:
            raise ConfigurationError(f"{task_type.name}: max_attempts must be >= 1")
        if task_type.timeout is not None and task_type.timeout <= 0:
            raise ConfigurationError(f"{task_type.name}: timeout must be > 0 seconds")
        if task_type.max_duration is not None:
            if not 0 < task_type.max_duration <= MAX_TIMEOUT:  # NaN fails this too
                raise ConfigurationError(
                    f"{task_type.name}: max_duration must be > 0 seconds and at most "
                    f"{MAX_TIMEOUT:.0f} (a year)"
                )
            if task_type.timeout is not None and task_type.timeout > task_type.max_duration:
                raise ConfigurationError(
                    f"{task_type.name}: timeout ({task_type.timeout:g}s) must not exceed "
                    f"max_duration ({task_type.max_duration:g}s)"
                )
        if task_type.concurrency is not None and task_type.concurrency < 1:
            raise ConfigurationError(f"{task_type.name}: concurrency must be >= 1")
        if task_type.rate_limit is not None:
            try:
                parse_rate(task_type.rate_limit)
            except ValueError as exc:
                raise ConfigurationError(f"{task_type.name}: {exc}") from None
        self._types[task_type.name] = task_type

    def get(self, name: str) -> TaskType:
        """The type called ``name``; :class:`UnknownTaskType` lists the known ones."""
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise UnknownTaskType(f"unknown task type {name!r}; known types: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[TaskType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)


def _default_executor(handler: Handler) -> str:
    return "async" if inspect.iscoroutinefunction(handler) else "thread"


def _check_executor(task_type: TaskType) -> None:
    """Refuse a handler its executor cannot run, saying what to do instead."""
    name, handler, executor = task_type.name, task_type.handler, task_type.executor
    if executor not in EXECUTORS:
        raise ConfigurationError(
            f"{name}: unknown executor {executor!r}; use 'async', 'thread' or 'process'"
        )
    is_async = inspect.iscoroutinefunction(handler)
    if executor == "async" and not is_async:
        raise ConfigurationError(
            f"the handler of {name!r} is not an async function: executor='async' needs "
            "async def handler(ctx, payload); leave executor out to run a def in a thread"
        )
    if executor != "async" and is_async:
        raise ConfigurationError(
            f"the handler of {name!r} is an async function, which executor={executor!r} "
            "cannot run; write it as a plain def, or leave executor out to run it in the "
            "event loop"
        )
    if executor == "process":
        module = getattr(handler, "__module__", None)
        qualname = getattr(handler, "__qualname__", None)
        bound = getattr(sys.modules.get(module or ""), handler.__name__, handler)
        if (
            not inspect.isfunction(handler)
            or qualname != handler.__name__
            or module in (None, "__main__")
            or not (
                bound is handler  # a handler being decorated is not bound yet
                or (isinstance(bound, TaskHandle) and bound.task_type.handler is handler)
            )
        ):
            raise ConfigurationError(
                f"the handler of {name!r} cannot run in another process: "
                "executor='process' needs a plain def at module level of an importable "
                "module (not a lambda, a closure, a method or a function in __main__)"
            )
