"""Declaring task types: ``App``, ``@app.task``, ``TaskType`` policies and ``Retry``."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from trellis_actors import (
    App,
    Backoff,
    ConfigurationError,
    Retry,
    TaskContext,
    TaskType,
    UnknownTaskType,
    ValidationError,
)
from trellis_actors.app import DEFAULT_RETRY_BACKOFF
from trellis_actors.decisions import TypeLimit


async def handler(ctx: TaskContext, payload: Any) -> Any:
    """Does nothing much."""
    return payload


def module_level(ctx: TaskContext, payload: Any) -> Any:
    return payload


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class TestRegistration:
    def test_decorator_without_arguments(self) -> None:
        """@app.task registers the handler under its own name with the default policies."""
        app = App(builtins=False)

        @app.task
        async def resize_image(ctx: TaskContext, payload: Any) -> None:
            """Make it smaller."""

        task_type = app.get("resize_image")
        assert task_type.handler is resize_image.__wrapped__
        assert (task_type.queue, task_type.max_attempts, task_type.timeout) == ("default", 3, None)
        assert task_type.backoff == DEFAULT_RETRY_BACKOFF
        assert (task_type.concurrency, task_type.dead_letter) == (None, True)
        assert task_type.retry_on == (Exception,)
        assert task_type.description == "Make it smaller."

    def test_decorator_with_arguments(self) -> None:
        """Every keyword of @app.task lands on the TaskType; a single retry_on becomes a tuple."""
        app = App(builtins=False)
        backoff = Backoff(initial=2, maximum=20, multiplier=3, jitter=0)
        returned = app.task(
            name="thumb",
            queue="images",
            max_attempts=5,
            backoff=backoff,
            timeout=9.5,
            concurrency=2,
            dead_letter=False,
            retry_on=Flaky,
        )(handler)
        assert returned.__wrapped__ is handler
        task_type = app.get("thumb")
        assert task_type == TaskType(
            name="thumb",
            handler=handler,
            queue="images",
            max_attempts=5,
            backoff=backoff,
            timeout=9.5,
            concurrency=2,
            dead_letter=False,
            retry_on=(Flaky,),
            description="Does nothing much.",
        )

    def test_builtins(self) -> None:
        """App() brings echo and sleep; App(builtins=False) is empty."""
        assert {"echo", "sleep"} <= {t.name for t in App()}
        assert len(App(builtins=False)) == 0

    def test_catalog_protocol(self) -> None:
        """An App supports ``in``, iteration in registration order and len()."""
        app = App(builtins=False)
        app.task(handler, name="b")
        app.task(handler, name="a")
        assert "a" in app and "c" not in app
        assert [t.name for t in app] == ["b", "a"]
        assert len(app) == 2

    def test_duplicate_name(self) -> None:
        """A second registration under a taken name is refused and says what to do."""
        app = App(builtins=False)
        app.task(handler, name="job")
        with pytest.raises(
            ConfigurationError,
            match=re.escape("task type 'job' is already registered; pass name=..."),
        ):
            app.task(handler, name="job")
        assert app.get("job").handler is handler

    def test_duplicate_of_a_builtin(self) -> None:
        """A user type cannot silently replace a built-in one."""
        with pytest.raises(ConfigurationError, match="'echo' is already registered"):
            App().task(handler, name="echo")

    def test_def_handler_runs_in_a_thread(self) -> None:
        """A plain ``def`` is a thread handler unless told otherwise."""

        def sync_handler(ctx: TaskContext, payload: Any) -> None:
            pass

        app = App(builtins=False)
        app.task(sync_handler)
        assert app.get("sync_handler").executor == "thread"
        assert app.get("sync_handler").to_dict()["executor"] == "thread"
        app.task(handler)
        assert app.get("handler").executor == "async"

    def test_process_handler(self) -> None:
        """A module-level ``def`` may run in a process."""
        app = App(builtins=False)
        app.task(module_level, executor="process")
        assert app.get("module_level").executor == "process"

    def test_async_handler_in_a_thread(self) -> None:
        """An ``async def`` cannot run in a thread or a process."""
        app = App(builtins=False)
        for executor in ("thread", "process"):
            with pytest.raises(
                ConfigurationError,
                match=re.escape(
                    f"the handler of 'handler' is an async function, which "
                    f"executor={executor!r} cannot run; write it as a plain def"
                ),
            ):
                app.task(handler, executor=executor)
        assert "handler" not in app

    def test_def_handler_as_async(self) -> None:
        """A ``def`` cannot run as an async handler."""
        app = App(builtins=False)
        with pytest.raises(
            ConfigurationError,
            match=re.escape("the handler of 'module_level' is not an async function"),
        ):
            app.task(module_level, executor="async")

    def test_unknown_executor(self) -> None:
        """Only async, thread and process exist."""
        with pytest.raises(
            ConfigurationError,
            match=re.escape("module_level: unknown executor 'fork'; use 'async', 'thread'"),
        ):
            App(builtins=False).task(module_level, executor="fork")

    def test_process_handler_must_be_importable(self) -> None:
        """Closures, lambdas and methods cannot cross to another process."""

        def closure(ctx: TaskContext, payload: Any) -> None:
            pass

        class Holder:
            @staticmethod
            def method(ctx: TaskContext, payload: Any) -> None:
                pass

        app = App(builtins=False)
        for fn, name in [(closure, None), (lambda ctx, p: None, "lam"), (Holder.method, None)]:
            with pytest.raises(
                ConfigurationError, match="cannot run in another process: executor='process'"
            ):
                app.task(fn, name=name, executor="process")
        assert len(app) == 0

    @pytest.mark.parametrize(
        "name", ["", "1job", "has space", "a/b", "x" * 129, "é", "job\n"], ids=repr
    )
    def test_bad_name(self, name: str) -> None:
        """Names must start with a letter or '_' and use a small alphabet, at most 128 chars."""
        app = App(builtins=False)
        with pytest.raises(
            ConfigurationError,
            match=re.escape(f"task type name {name!r} is not valid: use letters, digits"),
        ):
            app.add(TaskType(name, handler))
        assert len(app) == 0

    def test_bad_name_through_the_decorator(self) -> None:
        """@app.task(name=...) applies the same rule."""
        with pytest.raises(ConfigurationError, match="'no way' is not valid"):
            App(builtins=False).task(handler, name="no way")

    @pytest.mark.parametrize("name", ["job", "_job", "Mail.send", "a:b-c_d", "x" * 128])
    def test_good_names(self, name: str) -> None:
        """Letters, digits, '_', '.', ':' and '-' are fine."""
        app = App(builtins=False)
        app.task(handler, name=name)
        assert name in app

    @pytest.mark.parametrize("max_attempts", [0, -1])
    def test_max_attempts_below_one(self, max_attempts: int) -> None:
        """A type must be allowed at least one attempt."""
        with pytest.raises(ConfigurationError, match=r"^job: max_attempts must be >= 1$"):
            App(builtins=False).task(handler, name="job", max_attempts=max_attempts)

    @pytest.mark.parametrize("timeout", [0, -5.0])
    def test_timeout_not_positive(self, timeout: float) -> None:
        """A timeout must be a positive number of seconds."""
        with pytest.raises(ConfigurationError, match=r"^job: timeout must be > 0 seconds$"):
            App(builtins=False).task(handler, name="job", timeout=timeout)

    @pytest.mark.parametrize("rate", ["5", "0/s", "5/d", "x/m", "5/ m", "-1/s"])
    def test_rate_limit_format(self, rate: str) -> None:
        """rate_limit is N/s, N/m or N/h with N >= 1, checked at registration."""
        with pytest.raises(ConfigurationError, match=r"^job: rate_limit .* write N/s, N/m or N/h"):
            App(builtins=False).task(handler, name="job", rate_limit=rate)

    def test_limits(self) -> None:
        """A type's rate and concurrency become one TypeLimit; none without either."""
        app = App(builtins=False)
        app.task(handler, name="a", rate_limit="100/m", concurrency=3)
        app.task(handler, name="b")
        assert app.get("a").limit() == TypeLimit(concurrency=3, rate=100, per=60.0)
        assert app.get("a").to_dict()["rate_limit"] == "100/m"
        assert app.get("b").limit() is None

    def test_concurrency_below_one(self) -> None:
        """A concurrency limit of zero would never run the type."""
        with pytest.raises(ConfigurationError, match=r"^job: concurrency must be >= 1$"):
            App(builtins=False).task(handler, name="job", concurrency=0)


class TestLookup:
    def test_unknown_type_lists_known_ones(self) -> None:
        """UnknownTaskType names the missing type and every known one, sorted."""
        app = App(builtins=False)
        app.task(handler, name="zeta")
        app.task(handler, name="alpha")
        with pytest.raises(
            UnknownTaskType, match=re.escape("unknown task type 'nope'; known types: alpha, zeta")
        ):
            app.get("nope")

    def test_unknown_type_in_an_empty_app(self) -> None:
        """With nothing registered the message says so."""
        with pytest.raises(UnknownTaskType, match=r"known types: none$"):
            App(builtins=False).get("nope")

    def test_unknown_type_is_a_lookup_error(self) -> None:
        """UnknownTaskType can be caught as LookupError."""
        with pytest.raises(LookupError):
            App(builtins=False).get("nope")


class TestRetryPolicy:
    def test_default_retries_any_exception(self) -> None:
        """By default every Exception is worth another attempt."""
        task_type = TaskType("job", handler)
        assert task_type.retries(RuntimeError("x"))
        assert task_type.retries(Fatal())

    def test_retry_on_limits_what_retries(self) -> None:
        """With retry_on only those exceptions (and subclasses) retry."""
        task_type = TaskType("job", handler, retry_on=(Flaky, TimeoutError))
        assert task_type.retries(Flaky())
        assert task_type.retries(TimeoutError())
        assert not task_type.retries(Fatal())
        assert not task_type.retries(RuntimeError())

    def test_retry_always_retries(self) -> None:
        """Retry asks for another attempt even when retry_on would not match."""
        assert TaskType("job", handler, retry_on=(Flaky,)).retries(Retry())

    def test_validation_error_never_retries(self) -> None:
        """The same payload fails the same way: ValidationError is not retried."""
        assert not TaskType("job", handler).retries(ValidationError("bad", field="x"))
        assert not TaskType("job", handler, retry_on=(ValueError,)).retries(ValidationError("x"))

    def test_to_dict(self) -> None:
        """to_dict() describes the policies in JSON-ready form."""
        task_type = TaskType("job", handler, retry_on=(Flaky,), timeout=3.0)
        data = task_type.to_dict()
        assert data["retry_on"] == ["Flaky"]
        assert data["backoff"] == {
            "initial": 1.0,
            "maximum": 300.0,
            "multiplier": 2.0,
            "jitter": 0.2,
        }
        assert (data["name"], data["timeout"], data["max_attempts"]) == ("job", 3.0, 3)


class TestRetry:
    def test_delay_and_message(self) -> None:
        """Retry carries the delay and a message."""
        retry = Retry(delay=2.5, message="rate limited")
        assert retry.delay == 2.5
        assert str(retry) == "rate limited"
        assert Retry().delay is None
        assert Retry(delay=0).delay == 0

    @pytest.mark.parametrize("delay", [-1.0, math.nan, math.inf])
    def test_bad_delay(self, delay: float) -> None:
        """A negative, NaN or infinite delay is refused where it is raised, not in the queue."""
        with pytest.raises(
            ValueError, match=r"^Retry delay must be a finite number of seconds >= 0$"
        ):
            Retry(delay=delay)
