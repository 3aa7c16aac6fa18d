"""API tokens and their scopes: what a credential may do, and where tokens come from.

Scopes, from least to most:

* ``read`` — look: tasks, events, queues, workers, schedules, metrics, the actor tree;
* ``submit`` — submit tasks, optionally only of some ``types`` and/or into some ``queues``;
  it does not imply ``read`` (a producer need not see other producers' tasks);
* ``operate`` — cancel, requeue, create/change/pause/resume/delete schedules, run one now;
  implies ``read``;
* ``admin`` — everything: purge, the node itself, and unrestricted ``submit``.

A token file is TOML, one ``[[token]]`` table per token::

    [[token]]
    name = "ci"
    sha256 = "9f86d0…"          # or: token = "the secret itself"
    scopes = ["submit"]
    types = ["echo", "http_check"]   # optional: submit only these task types
    queues = ["default"]             # optional: submit only into these queues
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError


class Scope(StrEnum):
    """What a route needs. ``public`` needs no credential at all."""

    PUBLIC = "public"
    READ = "read"
    SUBMIT = "submit"
    OPERATE = "operate"
    ADMIN = "admin"


#: The scopes each scope grants (itself included).
IMPLIES: Mapping[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.SUBMIT: frozenset({Scope.SUBMIT}),
    Scope.OPERATE: frozenset({Scope.OPERATE, Scope.READ}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.OPERATE, Scope.READ, Scope.SUBMIT}),
}
#: The scopes a token may be given.
GRANTABLE = tuple(IMPLIES)

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def digest(secret: str) -> str:
    """The sha256 (hex) under which a token's secret is kept."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    """What one credential may do: its token's name, scopes and submit restrictions."""

    name: str
    scopes: frozenset[Scope]
    types: frozenset[str] | None = None  # None: any task type
    queues: frozenset[str] | None = None  # None: any queue

    def allows(self, scope: Scope) -> bool:
        return scope is Scope.PUBLIC or any(scope in IMPLIES[mine] for mine in self.scopes)

    def refusal(self, type: str, queue: str | None) -> str | None:
        """Why this grant may not submit a ``type`` task into ``queue`` (None: it may;
        ``queue=None`` checks the type alone)."""
        if Scope.ADMIN in self.scopes:
            return None
        if not self.allows(Scope.SUBMIT):
            return f"token {self.name!r} needs the 'submit' scope to submit tasks"
        if self.types is not None and type not in self.types:
            return f"token {self.name!r} may not submit tasks of type {type!r}"
        if self.queues is not None and queue is not None and queue not in self.queues:
            return f"token {self.name!r} may not submit tasks into queue {queue!r}"
        return None


#: Who calls when the server has no tokens: anyone may do anything.
ANYONE = Grant("anyone", frozenset({Scope.ADMIN}))


@dataclass(frozen=True, slots=True)
class Token:
    """A token as configured: the sha256 of its secret, never the secret."""

    sha256: str
    grant: Grant

    @classmethod
    def admin(cls, secret: str, name: str = "admin") -> Token:
        if not secret.strip():
            raise ValueError("an API token must not be empty")
        return cls(digest(secret), Grant(name, frozenset({Scope.ADMIN})))


@dataclass(frozen=True, slots=True)
class Tokens:
    """Every token a server accepts; empty leaves the server open."""

    tokens: tuple[Token, ...] = ()

    def __post_init__(self) -> None:
        names = [token.grant.name for token in self.tokens]
        for name in names:
            if names.count(name) > 1:
                raise ConfigurationError(f"two tokens are named {name!r}; give each its own")

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def match(self, secret: str) -> Grant | None:
        """The grant of the token whose secret is ``secret`` (every digest is compared, in
        constant time, so the answer takes as long for any token)."""
        given = digest(secret).encode()
        found: Grant | None = None
        for token in self.tokens:
            if hmac.compare_digest(given, token.sha256.encode()):
                found = token.grant
        return found

    def named(self, name: str) -> Grant | None:
        return next((t.grant for t in self.tokens if t.grant.name == name), None)

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.tokens + other.tokens)


def load_tokens(path: str | Path) -> Tokens:
    """The tokens of a TOML token file; ConfigurationError says what is wrong and where."""
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the token file {where}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"the token file {where} is not valid TOML: {exc}") from None
    entries = data.get("token")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(
            f"the token file {where} has no tokens; add [[token]] tables with name, "
            "token (or sha256) and scopes"
        )
    extra = set(data) - {"token"}
    if extra:
        raise ConfigurationError(f"the token file {where} has unknown keys: {sorted(extra)}")
    return Tokens(
        tuple(_token(entry, f"{where}: token {i + 1}") for i, entry in enumerate(entries))
    )


def _token(entry: Any, where: str) -> Token:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} is not a table")
    unknown = set(entry) - {"name", "token", "sha256", "scopes", "types", "queues"}
    if unknown:
        raise ConfigurationError(f"{where} has unknown keys: {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"{where} needs a name of 1 to 64 letters, digits, '_', '.', '@' or '-'"
        )
    where = f"{where} ({name!r})"
    secret, sha = entry.get("token"), entry.get("sha256")
    if (secret is None) == (sha is None):
        raise ConfigurationError(f"{where} needs exactly one of token and sha256")
    if secret is not None:
        if not isinstance(secret, str) or len(secret.strip()) < 16:
            raise ConfigurationError(f"{where}: a token must be at least 16 characters")
        sha = digest(secret)
    elif not isinstance(sha, str) or not _SHA256.match(sha.lower()):
        raise ConfigurationError(f"{where}: sha256 must be 64 hex digits")
    scopes = _strings(entry.get("scopes"), "scopes", where)
    if not scopes:
        raise ConfigurationError(f"{where} needs scopes, some of {', '.join(GRANTABLE)}")
    wrong = [scope for scope in scopes if scope not in GRANTABLE]
    if wrong:
        raise ConfigurationError(
            f"{where}: unknown scope {wrong[0]!r}; scopes are {', '.join(GRANTABLE)}"
        )
    types = _limit(entry.get("types"), "types", where)
    queues = _limit(entry.get("queues"), "queues", where)
    if (types is not None or queues is not None) and Scope.SUBMIT not in scopes:
        raise ConfigurationError(f"{where}: types and queues restrict 'submit', which it lacks")
    grant = Grant(name, frozenset(Scope(s) for s in scopes), types, queues)
    return Token(sha.lower(), grant)


def _strings(value: Any, key: str, where: str) -> Sequence[str]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where}: {key} must be a list of strings")
    return value


def _limit(value: Any, key: str, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    found = _strings(value, key, where)
    if not found:
        raise ConfigurationError(f"{where}: {key} is empty, so nothing could be submitted")
    return frozenset(found)


def from_sources(
    *, token: str | None = None, file: str | Path | None = None, env_token: str | None = None
) -> Tokens:
    """The tokens of a server: a token file, plus ``env_token`` (``TRELLIS_API_TOKEN``) and
    ``token`` (``--token``) as admin tokens named ``env`` and ``cli``."""
    tokens = load_tokens(file) if file else Tokens()
    extra: list[Token] = []
    for name, secret in (("env", env_token), ("cli", token)):
        if secret:
            extra.append(Token.admin(secret, name))
    return tokens + Tokens(tuple(_unique(extra, tokens)))


def _unique(extra: Iterable[Token], tokens: Tokens) -> Iterable[Token]:
    seen = {token.sha256 for token in tokens.tokens}
    for token in extra:
        if token.sha256 not in seen:  # --token given the same value as the env variable
            seen.add(token.sha256)
            yield token
