"""pyproject.toml declares every distribution that ``src/`` imports directly.

A module that only arrives as some other package's dependency (werkzeug through quart,
say) works until that package stops needing it, so each one is named. PostgreSQL and
OpenTelemetry are extras: their imports are lazy, and only the extras declare them.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import trellis_actors

ROOT = Path(trellis_actors.__file__).parent
PYPROJECT = ROOT.parents[1] / "pyproject.toml"
#: Distributions a requirement brings through its own extras: ``psycopg[pool]``.
IMPLIED = {"psycopg[": ("pool", "psycopg-pool")}


def top_level_imports() -> set[str]:
    """The top-level modules outside the standard library that ``src/`` imports anywhere."""
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", trellis_actors.__name__}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names_of(requirement: str) -> set[str]:
    """The distributions a requirement such as ``psycopg[pool]>=3.2`` installs by name."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    names = {normalise(match.group())}
    for prefix, (extra, implied) in IMPLIED.items():
        if requirement.startswith(prefix) and extra in requirement.partition("]")[0]:
            names.add(implied)
    return names


def project() -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["project"]
    return table


def declared(requirements: list[str]) -> set[str]:
    return set().union(*(names_of(r) for r in requirements))


class TestDependencies:
    def test_every_import_is_declared(self) -> None:
        """Each third-party module src/ imports comes from the core or a runtime extra."""
        table = project()
        extras = table["optional-dependencies"]
        allowed = declared(table["dependencies"] + extras["postgres"] + extras["otel"])
        distributions = packages_distributions()
        missing = {}
        for module in sorted(top_level_imports()):
            names = {normalise(d) for d in distributions.get(module, [module])}
            if not names & allowed:
                missing[module] = sorted(names)
        assert missing == {}

    def test_postgres_and_otel_are_extras(self) -> None:
        """The core installs neither psycopg nor OpenTelemetry; [postgres] leaves the
        choice of libpq to the user and [postgres-binary] brings psycopg's own."""
        table = project()
        extras = table["optional-dependencies"]
        core = declared(table["dependencies"])
        assert not core & {"psycopg", "psycopg-pool", "psycopg-binary"}
        assert not any(name.startswith("opentelemetry") for name in core)
        assert extras["postgres"] == ["psycopg[pool]>=3.2"]
        assert extras["postgres-binary"] == ["psycopg[binary,pool]>=3.2"]
