"""Environment variables for the options of ``trellis serve``, ``worker`` and ``migrate``.

Every option of those commands has one, made by :func:`bind_environment` from the built
parser, so that an option added later has its variable without anyone writing it down: the
option's long name upper-cased with ``TRELLIS_`` in front (``--max-body`` is
``TRELLIS_MAX_BODY``), or the older name in :data:`HISTORIC_NAMES`. A value is read as the
option reads its argument (its ``type`` and ``choices``); an on/off option takes ``1``,
``true``, ``yes`` or ``on`` and ``0``, ``false``, ``no`` or ``off``; a repeatable option a
comma-separated list. An option given on the command line wins over its variable, which
wins over the default; a repeatable option adds the command line's items to the variable's.
A bad value stops the command with exit status 2, naming the variable.

``python -m trellis_actors.cli --print-env-table`` prints the table of every variable that
docs/operations.md carries; ``--write-env-table docs/operations.md`` puts it there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PREFIX = "TRELLIS_"
#: Variables named before the rule above; every other option's name is derived.
HISTORIC_NAMES: Mapping[str, str] = {
    "--token": "TRELLIS_API_TOKEN",
    "--allowed-host": "TRELLIS_ALLOWED_HOSTS",
    "--cors-origin": "TRELLIS_CORS_ORIGINS",
}
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")
#: Where the table sits in docs/operations.md.
USAGE = "python -m trellis_actors.cli --print-env-table"
TABLE_START = f"<!-- environment table: {USAGE} -->"
TABLE_END = "<!-- end of environment table -->"

# argparse names its kinds of action (and lists a parser's actions) only privately.
_SINGLE = (argparse._StoreAction,)
_ON_OFF = (argparse._StoreConstAction, argparse.BooleanOptionalAction)
_LISTED = (argparse._AppendAction,)  # extend is a kind of append


class EnvironmentParser(argparse.ArgumentParser):
    """A parser whose bound options (:func:`bind_environment`) also read their variables."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The variable of each bound option, by variable name.
        self.environment: dict[str, argparse.Action] = {}

    def parse_known_args(  # type: ignore[override]  # one signature for typeshed's overloads
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if namespace is None and self.environment:
            # Values already in the namespace stand in for defaults: the command line
            # replaces them (or, for a repeatable option, adds to them).
            namespace = argparse.Namespace(**self.read_environment(os.environ))
        return super().parse_known_args(args, namespace)

    def read_environment(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """The values that the variables set in ``environ`` give, by destination; exits 2
        (as for a bad argument) naming the first bad one. An empty variable counts as unset."""
        values: dict[str, Any] = {}
        for name, action in self.environment.items():
            raw = environ.get(name, "").strip()
            if raw:
                try:
                    values[action.dest] = parse_value(action, raw)
                except ValueError as exc:
                    self.error(f"environment variable {name}={raw!r} (for {flag(action)}): {exc}")
        return values


def env_name(action: argparse.Action) -> str:
    """The variable of an option: historic, or derived from its long name."""
    option = flag(action)
    return HISTORIC_NAMES.get(option) or PREFIX + option.lstrip("-").upper().replace("-", "_")


def flag(action: argparse.Action) -> str:
    """An option's long name (its first, if it has several)."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or list(action.option_strings))[0]


def bind_environment(parser: argparse.ArgumentParser) -> None:
    """Give every option of ``parser`` (but ``--help``) its variable, named in its help."""
    if not isinstance(parser, EnvironmentParser):
        raise TypeError(f"{parser.prog}: only an EnvironmentParser reads the environment")
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        if not isinstance(action, _SINGLE + _ON_OFF + _LISTED):
            raise TypeError(f"{flag(action)}: no rule reads a {type(action).__name__} from the env")
        name = env_name(action)
        if name not in parser.environment:
            parser.environment[name] = action
            # An option shared through a parent parser is bound once per command.
            if action.help != argparse.SUPPRESS and f"env {name}" not in (action.help or ""):
                action.help = f"{action.help} (env {name})" if action.help else f"env {name}"


def parse_value(action: argparse.Action, raw: str) -> Any:
    """``raw`` read as ``action`` reads a command-line argument (ValueError saying why not)."""
    if isinstance(action, _ON_OFF):
        word = raw.lower()
        if word in ON:
            return True if isinstance(action, argparse.BooleanOptionalAction) else action.const
        if word in OFF:
            return False if isinstance(action, argparse.BooleanOptionalAction) else action.default
        raise ValueError(
            f"use {', '.join(ON)} to turn {flag(action)} on, or {', '.join(OFF)} to leave it off"
        )
    listed = isinstance(action, _LISTED) or action.nargs not in (None, "?")
    if not listed:
        return _one(action, raw)
    return [_one(action, item.strip()) for item in raw.split(",") if item.strip()]


def _one(action: argparse.Action, text: str) -> Any:
    convert = action.type if callable(action.type) else str
    try:
        value = convert(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None
    except (TypeError, ValueError):
        kind = getattr(convert, "__name__", "value")
        raise ValueError(f"{text!r} is not a valid {kind}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ValueError(f"{text!r} is not one of {choices}")
    return value


# -- the table in docs/operations.md ----------------------------------------------------


def environment_table(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of every variable of the node commands of ``trellis``'s ``parser``:
    variable, option, commands, default and meaning."""
    rows: dict[int, tuple[str, argparse.Action, list[str]]] = {}
    for command, sub in _commands(parser):
        for name, action in sub.environment.items():
            rows.setdefault(id(action), (name, action, []))[2].append(command)
    lines = [
        "| variable | option | commands | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, action, commands in sorted(rows.values(), key=lambda r: (r[0], r[2])):
        meaning, default = _meaning(action, name)
        cells = (f"`{name}`", f"`{flag(action)}`", ", ".join(commands), default, meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, EnvironmentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                if isinstance(sub, EnvironmentParser) and sub.environment:
                    found.append((command, sub))
    return found


def _meaning(action: argparse.Action, name: str) -> tuple[str, str]:
    """An option's help as the docs show it, and its default: the help's closing
    ``(default X)``, or else the parser's default."""
    text = (action.help or "").removesuffix(f" (env {name})")
    text = "" if text == f"env {name}" else text  # an option without help of its own
    if "%(" in text:
        text = text % {**vars(action), "prog": "trellis"}
    match = re.fullmatch(r"(.*?)\s*\(default:? ([^();]*)\)", text)
    if match:
        return match[1], match[2]
    return text, _shown(action)


def _shown(action: argparse.Action) -> str:
    """An option's default as the docs show it."""
    default = action.default
    if isinstance(action, _ON_OFF):
        return "off" if default in (None, False) else "on"
    if default is None or default == [] or default == "":
        return "none"
    if isinstance(default, float) and getattr(action.type, "__name__", "") == "_duration":
        return _duration(default)
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"`{int(seconds // size)}{unit}`"
    return f"`{seconds:g}`"


def write_table(path: Path, table: str) -> bool:
    """Put ``table`` between the markers in ``path``; True if the file changed."""
    text = path.read_text()
    head, start, rest = text.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not start or not end:
        raise SystemExit(f"{path}: no {TABLE_START!r} ... {TABLE_END!r} markers")
    new = f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}"
    path.write_text(new)
    return new != text


def main(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """``--print-env-table`` prints the table of ``parser``'s variables;
    ``--write-env-table PATH`` puts it in a Markdown file."""
    table = environment_table(parser)
    if list(argv) == ["--print-env-table"]:
        sys.stdout.write(table)
    elif len(argv) == 2 and argv[0] == "--write-env-table":
        changed = write_table(Path(argv[1]), table)
        print(f"{argv[1]}: {'updated' if changed else 'up to date'}")
    else:
        print(f"usage: {USAGE} | --write-env-table PATH", file=sys.stderr)
        return 2
    return 0
