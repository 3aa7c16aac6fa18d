"""Task contracts: what a handler's annotations say its payload and result are.

A handler ``async def send_email(ctx, email: Email) -> Receipt`` declares that its payload
is an ``Email`` and its result a ``Receipt``. Any annotation pydantic can validate serves:
a pydantic model, a ``TypedDict``, a dataclass, a plain type such as ``int`` or
``list[str]``. Submitting validates the payload against it on every path and stores its JSON
form; the handler receives the parsed value; what it returns is checked against the return
annotation and stored as JSON. A handler without annotations (or annotated ``Any``) takes
and gives any JSON, as before.

``@app.task`` returns a :class:`TaskHandle`, generic over payload and result, that every
submit API accepts in place of a type name, so that mypy checks what is submitted and what
``wait`` returns.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol

import pydantic
from pydantic.json_schema import DEFAULT_REF_TEMPLATE
from typing_extensions import TypeVar

from .errors import ConfigurationError, ValidationError
from .lifecycle import R as R

if TYPE_CHECKING:
    from .context import TaskContext

#: The payload type of a task handle (``Any`` when it is not known).
P = TypeVar("P", default=Any)
# A handle takes payloads and gives results: variance lets mypy say which argument is
# wrong rather than that it cannot solve for P.
_P_in = TypeVar("_P_in", contravariant=True, default=Any)
_R_out = TypeVar("_R_out", covariant=True, default=Any)

#: Annotations that mean "any JSON": no contract.
_ANYTHING = (Any, object, inspect.Parameter.empty, inspect.Signature.empty)
#: Annotations whose validated value is the JSON value itself (so a handler can be given
#: the stored value as it is, without a copy).
_JSON_NATIVE = (dict, list, str, int, float, bool, type(None))
_MAX_ERRORS_SHOWN = 3


class Shape:
    """One side of a contract: a pydantic ``TypeAdapter`` for an annotation."""

    __slots__ = ("adapter", "annotation", "native")

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        try:
            self.adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
        except pydantic.PydanticSchemaGenerationError as exc:
            raise ConfigurationError(
                f"{_describe(annotation)} is not a type whose values can be checked as JSON "
                f"({exc.message}); annotate with a pydantic model, a TypedDict, a dataclass "
                "or a JSON type, or leave the annotation out"
            ) from None
        except pydantic.PydanticUserError as exc:  # a type pydantic refuses as written
            raise ConfigurationError(
                f"{_describe(annotation)} cannot be a contract as written: {exc.message}"
            ) from None
        # Plain JSON containers and scalars validate to what they were given: nothing to
        # parse when a handler receives one from the store.
        self.native = annotation in _JSON_NATIVE or (
            typing.get_origin(annotation) in (dict, list)
            and all(_is_anything(arg) or arg is str for arg in typing.get_args(annotation))
        )

    def check(self, value: Any, field: str) -> Any:
        """The value parsed from ``value`` (JSON or an instance); ValidationError naming
        the field (``payload.to``) otherwise."""
        try:
            return self.adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise _located(exc, field) from None

    def dump(self, value: Any) -> Any:
        """The JSON form of a parsed value."""
        return self.adapter.dump_python(value, mode="json")

    def schema(self, ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
        """Its JSON Schema; named parts under ``$defs``, referred to by ``ref_template``."""
        try:
            return self.adapter.json_schema(ref_template=ref_template)
        except pydantic.PydanticUserError:  # pragma: no cover - types with no JSON Schema
            return {}


class Contract:
    """The payload and result shapes of a task type; ``None`` on a side means any JSON."""

    __slots__ = ("payload", "result")

    def __init__(self, payload: Shape | None = None, result: Shape | None = None) -> None:
        self.payload = payload
        self.result = result

    def accept(self, payload: Any) -> Any:
        """A submitted payload (JSON, or an instance of the payload type) as the JSON to
        store; raises ValidationError naming the field."""
        if self.payload is None:
            return payload
        return self.payload.dump(self.payload.check(payload, "payload"))

    def parse(self, payload: Any) -> Any:
        """The stored JSON payload as the handler's argument."""
        if self.payload is None or self.payload.native:
            if self.payload is not None:
                self.payload.check(payload, "payload")  # a stored value is checked too
            return payload
        return self.payload.check(payload, "payload")

    def give(self, result: Any) -> Any:
        """What the handler returned, checked against the result type, as JSON."""
        if self.result is None:
            return result
        return self.result.dump(self.result.check(result, "result"))

    def read(self, result: Any) -> Any:
        """A stored JSON result as a value of the result type."""
        if self.result is None or result is None:
            return result
        return self.result.check(result, "result")

    def schemas(self) -> dict[str, Any]:
        """``{"payload_schema", "result_schema"}``: JSON Schemas, ``None`` for any JSON."""
        return {
            "payload_schema": None if self.payload is None else self.payload.schema(),
            "result_schema": None if self.result is None else self.result.schema(),
        }


#: The contract of a handler without annotations.
ANY_JSON = Contract()


def contract_of(handler: Callable[..., Any], namespace: dict[str, Any] | None = None) -> Contract:
    """The contract a handler's annotations declare: its second parameter's annotation
    is the payload type, its return annotation the result type.

    ``namespace`` resolves names the annotations use that are not module globals (a
    model defined in the function that registers the handler)."""
    target = inspect.unwrap(handler)
    try:
        annotations = inspect.get_annotations(target)
        parameters = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):  # a callable without a signature or annotations
        return ANY_JSON
    # Only the payload and the return annotation matter: ``ctx: TaskContext`` may name a
    # class imported under TYPE_CHECKING alone.
    payload = annotations.get(parameters[1].name, Any) if len(parameters) >= 2 else Any
    result = annotations.get("return", Any)
    scope = getattr(target, "__globals__", {})
    payload = _resolve(payload, scope, namespace, handler)
    result = _resolve(result, scope, namespace, handler)
    if not (_is_anything(payload) and _is_anything(result)):
        return Contract(
            None if _is_anything(payload) else Shape(payload),
            None if _is_anything(result) else Shape(result),
        )
    return ANY_JSON


@functools.cache
def cached_contract(handler: Callable[..., Any]) -> Contract:
    """:func:`contract_of` remembered per handler (a pool process finds it once)."""
    return contract_of(handler)


class TaskDefaults(Protocol):
    """What a submission takes from its task type (an ``app.TaskType``)."""

    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def dead_letter(self) -> bool: ...
    @property
    def max_duration(self) -> float | None: ...
    @property
    def contract(self) -> Contract: ...


class TaskSpec(TaskDefaults, Protocol):
    """A registered task type as a handle holds it (an ``app.TaskType``)."""

    @property
    def handler(self) -> Callable[..., Any]: ...
    @property
    def executor(self) -> str: ...


class TaskHandle(Generic[_P_in, _R_out]):
    """What ``@app.task`` returns: the registered task type, typed by its payload ``P``
    and result ``R``.

    Pass it wherever a task type name is taken (``rt.submit(send_email, Email(...))``,
    ``Client.submit``, ``trellis_actors.postgres.enqueue``) and mypy checks the payload and
    the result that ``wait`` returns. It can still be called like the function it wraps:
    ``await send_email(ctx, Email(...))`` in a unit test.
    """

    def __init__(self, task_type: TaskSpec) -> None:
        self.task_type = task_type
        functools.update_wrapper(self, task_type.handler)  # name, doc, module, __wrapped__

    @property
    def name(self) -> str:
        """The task type's name: what a submission by name would say."""
        return self.task_type.name

    @property
    def contract(self) -> Contract:
        return self.task_type.contract

    def __call__(self, ctx: TaskContext, payload: _P_in) -> Any:
        return self.task_type.handler(ctx, payload)

    def __repr__(self) -> str:
        return f"<TaskHandle {self.task_type.name!r} ({self.task_type.executor})>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference, as the function it stands for: a pool process imports it.
        handler = self.task_type.handler
        return (_import_attribute, (handler.__module__, handler.__qualname__))


def importable(handler: Callable[..., Any]) -> Callable[..., Any]:
    """What a pool process imports to reach ``handler``: the module attribute of its
    name, which is the handler or the handle ``@app.task`` made of it."""
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    bound = getattr(module, getattr(handler, "__name__", ""), None)
    if isinstance(bound, TaskHandle) and bound.task_type.handler is handler:
        return bound
    return handler


def _import_attribute(module: str, qualname: str) -> Any:
    import importlib

    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def task_name(task: TaskHandle[Any, Any] | str) -> str:
    """The type name a handle or a name stands for."""
    return task.task_type.name if isinstance(task, TaskHandle) else task


def caller_namespace(depth: int) -> dict[str, Any] | None:
    """The local names of the frame ``depth`` levels up, where a decorator was applied:
    annotations may name classes defined there."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:  # pragma: no cover - not that deep
        return None
    if frame.f_code.co_name == "<module>":
        return None  # module globals are the handler's own
    return dict(frame.f_locals)


def _resolve(
    annotation: Any,
    scope: dict[str, Any],
    namespace: dict[str, Any] | None,
    handler: Callable[..., Any],
) -> Any:
    """An annotation written as text (``from __future__ import annotations``) evaluated
    where the handler was defined."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, scope, namespace)  # what typing.get_type_hints does
    except NameError as exc:
        raise ConfigurationError(
            f"cannot resolve the annotation {annotation!r} of "
            f"{getattr(handler, '__qualname__', handler)!r}: {exc}; define the types it "
            "names at module level"
        ) from None


def _is_anything(annotation: Any) -> bool:
    return any(annotation is anything for anything in _ANYTHING)


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def _located(exc: pydantic.ValidationError, field: str) -> ValidationError:
    """Our ValidationError for pydantic's: the first problem, located under ``field``."""
    problems = exc.errors(include_url=False, include_input=False)
    first = problems[0]
    where = ".".join([field, *(str(part) for part in first["loc"])])
    message = f"{where}: {first['msg']}"
    if len(problems) > 1:
        shown = [
            ".".join([field, *(str(part) for part in p["loc"])]) + f": {p['msg']}"
            for p in problems[1:_MAX_ERRORS_SHOWN]
        ]
        message += "; " + "; ".join(shown)
        if len(problems) > _MAX_ERRORS_SHOWN:
            message += f" (and {len(problems) - _MAX_ERRORS_SHOWN} more)"
    return ValidationError(message, field=where)
