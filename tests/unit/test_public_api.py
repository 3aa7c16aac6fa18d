"""The public API: every public name comes through ``trellis_actors/__init__.py``, once."""

from __future__ import annotations

import ast
import importlib
import inspect
import types
from pathlib import Path

import trellis_actors

#: Adding or removing a public name is a deliberate act: change this set with it.
EXPECTED = frozenset(
    {
        "ActorCrashed",
        "ActorStopped",
        "App",
        "AskTimeout",
        "Backoff",
        "ConfigurationError",
        "RuntimeNotRunning",
        "EventStream",
        "HttpCheckPolicy",
        "InvalidTransition",
        "NodeInfo",
        "Retention",
        "Retry",
        "Runtime",
        "RuntimeConfig",
        "StoreUnavailable",
        "SupervisorEscalation",
        "Task",
        "TaskContext",
        "TaskHandle",
        "TaskError",
        "TaskEvent",
        "TaskNotFound",
        "TaskStatus",
        "TaskTimeout",
        "WorkflowContext",
        "HistoryEntry",
        "NonDeterminism",
        "NotAWorkflow",
        "StepFailed",
        "WorkflowEnded",
        "WorkflowState",
        "TaskType",
        "Recorded",
        "Transition",
        "TrellisError",
        "UnknownTaskType",
        "ValidationError",
        "WaitTimeout",
        "compute_backoff",
        "open_runtime",
    }
)

INIT = Path(trellis_actors.__file__)


def public_names() -> set[str]:
    """Non-underscore attributes of the package that are not its submodules."""
    return {
        name
        for name, value in vars(trellis_actors).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def reexports() -> dict[str, str]:
    """``from .module import Name as Name`` lines of ``__init__.py``: name → module."""
    found: dict[str, str] = {}
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                found[alias.asname or alias.name] = f"{'.' * node.level}{node.module}"
    return found


class TestPublicApi:
    def test_exact_public_names(self) -> None:
        """The package exposes exactly the expected names, no more and no fewer."""
        assert public_names() == EXPECTED

    def test_names_are_reexported_explicitly(self) -> None:
        """Each public name is imported with the ``Name as Name`` re-export idiom."""
        tree = ast.parse(INIT.read_text())
        imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert imports, "__init__.py re-exports nothing"
        for node in imports:
            assert node.level == 1, f"{ast.unparse(node)}: import from a private module of ours"
            for alias in node.names:
                assert alias.asname == alias.name, f"{ast.unparse(node)}: use 'X as X'"
        assert set(reexports()) == EXPECTED

    def test_each_name_once(self) -> None:
        """No public name is imported twice."""
        names = [
            alias.asname or alias.name
            for node in ast.parse(INIT.read_text()).body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        ]
        assert len(names) == len(set(names))

    def test_nothing_else_is_defined_in_init(self) -> None:
        """__init__.py only re-exports: nothing else but its docstring and __version__."""
        for node in ast.parse(INIT.read_text()).body:
            match node:
                case ast.ImportFrom() | ast.Expr(value=ast.Constant(value=str())):
                    continue
                case ast.Assign(targets=[ast.Name(id="__version__")]):
                    continue
                case _:
                    raise AssertionError(f"__init__.py defines {ast.unparse(node)!r}")

    def test_names_are_the_objects_of_their_modules(self) -> None:
        """Each public name is the very object defined in the module it comes from."""
        for name, module in reexports().items():
            source = importlib.import_module(module, "trellis_actors")
            assert getattr(trellis_actors, name) is getattr(source, name)

    def test_star_import(self) -> None:
        """``from trellis_actors import *`` brings the public names and nothing private."""
        namespace: dict[str, object] = {}
        exec("from trellis_actors import *", namespace)
        star = {name for name in namespace if name != "__builtins__"}
        assert star >= EXPECTED
        assert not {name for name in star if name.startswith("_")}

    def test_errors_share_one_base(self) -> None:
        """Every public error derives from TrellisError (Retry, raised by handlers, aside)."""
        errors = [
            value
            for name in EXPECTED - {"Retry"}
            if inspect.isclass(value := getattr(trellis_actors, name))
            and issubclass(value, BaseException)
        ]
        assert len(errors) == 18
        assert all(issubclass(error, trellis_actors.TrellisError) for error in errors)

    def test_version(self) -> None:
        """The package has a version string."""
        assert isinstance(trellis_actors.__version__, str)
        assert trellis_actors.__version__.count(".") == 2
