"""Declaring task types: ``App`` and ``@app.task``."""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ._backoff import Backoff
from .builtin_tasks import BUILTINS
from .errors import ConfigurationError, UnknownTaskType, ValidationError
from .scheduling.define import ScheduleDefinition, define

if TYPE_CHECKING:
    from .context import TaskContext

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
    concurrency: int | None = None
    dead_letter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    description: str | None = None
    #: "async" (an ``async def`` in the event loop), "thread" (a ``def`` in a worker
    #: thread) or "process" (a module-level ``def`` in a pool process).
    executor: str = "async"

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt under this type's policy."""
        if isinstance(error, ValidationError):
            return False  # the same payload will fail the same way
        return isinstance(error, (Retry, *self.retry_on))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queue": self.queue,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
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
        }


@dataclass
class App:
    """A catalog of task types. Handlers are ``async def handler(ctx, payload)``, or a plain
    ``def handler(ctx, payload)`` run in a worker thread (``executor="thread"``, the default
    for a ``def``) or in a pool process (``executor="process"``).

    ``App(builtins=True)`` (the default) includes the built-in ``echo`` and ``sleep`` types.
    """

    builtins: bool = True
    _types: dict[str, TaskType] = field(default_factory=dict, init=False, repr=False)
    _schedules: dict[str, ScheduleDefinition] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.builtins:
            for handler, options in BUILTINS:
                self.task(handler, **options)

    def task(
        self,
        fn: Handler | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 3,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        timeout: float | None = None,
        concurrency: int | None = None,
        dead_letter: bool = True,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        executor: str | None = None,
    ) -> Any:
        """Register ``async def handler(ctx, payload)`` (or a ``def``); usable with or
        without arguments. ``executor`` is "async" (the default for an ``async def``),
        "thread" (the default for a ``def``) or "process"."""

        def register(handler: Handler) -> Handler:
            self.add(
                TaskType(
                    name=name or handler.__name__,
                    handler=handler,
                    queue=queue,
                    max_attempts=max_attempts,
                    backoff=backoff,
                    timeout=timeout,
                    concurrency=concurrency,
                    dead_letter=dead_letter,
                    retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
                    description=inspect.getdoc(handler),
                    executor=executor or _default_executor(handler),
                )
            )
            return handler

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
        **task_options: Any,
    ) -> Callable[[Handler], Handler]:
        """Register a task type and a schedule for it, in one decorator::

            @app.periodic(every="30s")
            async def refresh_cache(ctx, payload): ...

        ``task_options`` are those of :meth:`task`. The schedule is named after the task
        unless ``name`` is given; it is created or updated on start, never duplicated.
        """

        def register(handler: Handler) -> Handler:
            task_name = task_options.pop("name", None) or handler.__name__
            self.task(handler, name=task_name, **task_options)
            self.schedule(
                name or task_name,
                task_name,
                payload,
                every=every,
                cron=cron,
                timezone=timezone,
                at=at,
                misfire=misfire,
            )
            return handler

        return register

    def schedule(self, name: str, task_type: str, payload: Any = None, **spec: Any) -> None:
        """Declare a schedule in code: ``app.schedule("nightly", "report", cron="0 2 * * *")``.

        Takes ``every``, ``cron`` (with ``timezone``), ``at``, ``queue``, ``priority``,
        ``misfire`` and ``paused``; raises ValidationError for a bad spec.
        """
        if name in self._schedules:
            raise ConfigurationError(f"a schedule named {name!r} is already declared")
        self._schedules[name] = define(name, task_type, payload, **spec)

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
        if task_type.concurrency is not None and task_type.concurrency < 1:
            raise ConfigurationError(f"{task_type.name}: concurrency must be >= 1")
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
        if (
            not inspect.isfunction(handler)
            or qualname != handler.__name__
            or module in (None, "__main__")
            or getattr(sys.modules.get(module or ""), handler.__name__, None) is not handler
        ):
            raise ConfigurationError(
                f"the handler of {name!r} cannot run in another process: "
                "executor='process' needs a plain def at module level of an importable "
                "module (not a lambda, a closure, a method or a function in __main__)"
            )
