"""SQL kept in ``.sql`` files beside the stores: named query blocks, a schema, migrations.

Each dialect has a folder under ``sql/``:

* ``queries.sql`` holds the statements, each under a ``-- name: <name>`` line;
* ``schema.sql`` is the whole schema at the latest migration, for fresh databases;
* ``migrations/NNNN_<what>.sql`` are the ordered steps an existing database takes.

Everything is read once per process. No statement is ever assembled from data: the one
expansions are the SQLite store's ``{rows}`` and ``trellis_actors.postgres``'s
``{events}``, a fixed number of placeholder groups.
Also here: the slice of DB-API the SQL stores rely on (:class:`Cursor`), and :func:`redact`
for showing a store URL.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a dialect's schema history."""

    version: int
    name: str
    sql: str


def _folder(dialect: str) -> resources.abc.Traversable:
    return resources.files(__package__).joinpath("sql", dialect)


def parse_queries(text: str) -> dict[str, str]:
    """Split ``-- name: x`` blocks into ``{name: statement}``.

    Text before the first name is a preamble and is dropped; whole-line comments inside a
    block are dropped too (a ``%`` in them would confuse psycopg's placeholders), as is the
    trailing semicolon.
    """
    parts = _NAME_LINE.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice; give each block its own name")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        if not statement:
            raise ValueError(f"query {name!r} is empty")
        found[name] = statement
    return found


@functools.cache
def queries(dialect: str, file: str = "queries.sql") -> Mapping[str, str]:
    """The named queries of ``dialect`` (``sqlite`` or ``postgres``), from ``file``."""
    text = _folder(dialect).joinpath(file).read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text))


@functools.cache
def schema(dialect: str) -> str:
    """The latest schema of ``dialect`` as one script."""
    return _folder(dialect).joinpath("schema.sql").read_text(encoding="utf-8")


@functools.cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """Every migration of ``dialect``, oldest first; versions run 1, 2, 3… without gaps."""
    found: list[Migration] = []
    for entry in _folder(dialect).joinpath("migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is None:
            continue
        version, name = int(match.group(1)), match.group(2)
        found.append(Migration(version, name, entry.read_text(encoding="utf-8")))
    if not found:  # a fresh database would silently get no schema at all
        raise RuntimeError(
            f"no {dialect} migrations under stores/sql/{dialect}/migrations: "
            "Trellis was installed without its SQL files"
        )
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{dialect} migrations must be numbered 1, 2, 3… once each: {versions}")
    return tuple(found)


def sqlite_statements(script: str) -> list[str]:
    """Split a SQLite script into complete statements (``executescript`` would commit)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # not a ';' inside a string or a trigger
            if _has_code(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_code(pending):
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending!r}")
    return statements


def _has_code(text: str) -> bool:
    return any(line.split("--", 1)[0].strip(" \t;") for line in text.splitlines())


class Cursor(Protocol):
    """The slice of DB-API that both sqlite3 and psycopg cursors offer; rows are mappings."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Any = ..., /) -> Any: ...

    def executemany(self, query: str, params_seq: Iterable[Any], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


#: ``password=…`` in a keyword/value connection string (a value may be single-quoted).
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
#: ``?password=…`` or ``&password=…`` in a URL's query.
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """A store URL (or libpq keyword/value connection string) without its password, for
    messages, logs and pages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    end = min([at for at in (rest.find(mark) for mark in "/?#") if at >= 0], default=len(rest))
    authority, tail = rest[:end], _QUERY_PASSWORD.sub(r"\1***", rest[end:])
    credentials, at, hosts = authority.rpartition("@")
    if at and ":" in credentials:
        authority = f"{credentials.split(':', 1)[0]}:***@{hosts}"
    return f"{scheme}://{authority}{tail}"
