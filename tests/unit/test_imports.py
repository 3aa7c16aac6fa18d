"""The package's import graph has no cycles, between folders nor between modules.

The graph is read from the source (the AST of every module), so it sees every import:
at module level, inside functions, and under ``if TYPE_CHECKING:``. A cycle hidden in a
function or behind ``TYPE_CHECKING`` still ties two layers together (and is one refactor
away from an ``ImportError``), so those count too. The shared vocabulary of a layer (its
message unions, Protocols and value types) lives in one module that the layers above
import, which is what keeps the graph acyclic.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import trellis_actors

PACKAGE = trellis_actors.__name__
ROOT = Path(trellis_actors.__file__).parent

Graph = Mapping[str, set[str]]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's modules that ``name`` imports anywhere in its source, with the line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source != PACKAGE and not source.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"  # ``from . import tracing``
                yield (submodule if submodule in known else source), node.lineno


def unit(module: str) -> str:
    """The folder or top-level module that ``module`` belongs to (the package itself for
    its ``__init__``)."""
    return ".".join(module.split(".")[:2])


def graphs() -> tuple[Graph, Graph, dict[tuple[str, str], list[str]]]:
    """(module graph, folder graph, where each folder edge comes from)."""
    known = modules()
    by_module: dict[str, set[str]] = defaultdict(set)
    by_unit: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in known.items():
        by_module[name]
        by_unit[unit(name)]
        for target, line in imports(name, path, known):
            if target != name:
                by_module[name].add(target)
            a, b = unit(name), unit(target)
            if a != b:
                by_unit[a].add(b)
                where[a, b].append(f"{name}:{line} imports {target}")
    return by_module, by_unit, where


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph.get(node, ())):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def explain(component: list[str], where: Mapping[tuple[str, str], list[str]]) -> str:
    lines = [" <-> ".join(component)]
    for a in component:
        for b in component:
            lines.extend(f"  {line}" for line in where.get((a, b), ()))
    return "\n".join(lines)


class TestImportGraph:
    def test_no_cycle_between_folders(self) -> None:
        """No two folders or top-level modules import each other, even indirectly."""
        _, by_unit, where = graphs()
        found = cycles(by_unit)
        assert not found, "import cycles between folders:\n" + "\n".join(
            explain(component, where) for component in found
        )

    def test_no_cycle_between_modules(self) -> None:
        """No two modules import each other, even indirectly."""
        by_module, _, _ = graphs()
        assert cycles(by_module) == []

    def test_graph_is_read(self) -> None:
        """The graph sees module-level, function-level and TYPE_CHECKING imports."""
        by_module, by_unit, _ = graphs()
        assert f"{PACKAGE}.lifecycle" in by_unit[f"{PACKAGE}.runtime"]
        assert f"{PACKAGE}.logging" in by_module[f"{PACKAGE}.cli"]  # inside a function
        assert f"{PACKAGE}.context" in by_module[f"{PACKAGE}.builtin_tasks"]  # TYPE_CHECKING


class TestCycles:
    @pytest.mark.parametrize(
        ("graph", "expected"),
        [
            ({"a": {"b"}, "b": set()}, []),
            ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
            ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
            ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
        ],
    )
    def test_finds_cycles(self, graph: Graph, expected: list[list[str]]) -> None:
        """Each strongly connected component of two or more nodes is reported once."""
        assert cycles(graph) == expected
