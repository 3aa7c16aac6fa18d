"""Token files and scopes: what a file may say, and what each scope grants."""

from __future__ import annotations

from pathlib import Path

import pytest

from trellis_actors.access.tokens import (
    Grant,
    Scope,
    Token,
    Tokens,
    digest,
    from_sources,
    load_tokens,
)
from trellis_actors.errors import ConfigurationError

SECRET = "a-long-enough-secret-0123"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text, encoding="utf-8")
    return path


class TestScopes:
    @pytest.mark.parametrize(
        ("held", "needed", "allowed"),
        [
            ("read", "read", True),
            ("read", "submit", False),
            ("read", "operate", False),
            ("submit", "read", False),
            ("submit", "submit", True),
            ("operate", "read", True),
            ("operate", "submit", False),
            ("operate", "admin", False),
            ("admin", "read", True),
            ("admin", "submit", True),
            ("admin", "operate", True),
            ("read", "public", True),
        ],
    )
    def test_implied(self, held: str, needed: str, allowed: bool) -> None:
        """admin implies every scope, operate implies read; submit stands alone."""
        assert Grant("t", frozenset({Scope(held)})).allows(Scope(needed)) is allowed

    def test_restricted_submit(self) -> None:
        grant = Grant("ci", frozenset({Scope.SUBMIT}), frozenset({"echo"}), frozenset({"q"}))
        assert grant.refusal("echo", "q") is None
        assert grant.refusal("sleep", "q") == "token 'ci' may not submit tasks of type 'sleep'"
        assert grant.refusal("echo", "r") == "token 'ci' may not submit tasks into queue 'r'"
        assert Grant("a", frozenset({Scope.ADMIN})).refusal("any", "where") is None


class TestTokenFile:
    def test_loads_secrets_and_digests(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            f"""
            [[token]]
            name = "ci"
            token = "{SECRET}"
            scopes = ["submit"]
            types = ["echo"]

            [[token]]
            name = "grafana"
            sha256 = "{digest("another-secret-0123456").upper()}"
            scopes = ["read"]
            """,
        )
        tokens = load_tokens(path)
        ci = tokens.match(SECRET)
        assert ci is not None and ci.name == "ci" and ci.types == frozenset({"echo"})
        assert ci.queues is None
        grafana = tokens.match("another-secret-0123456")
        assert grafana is not None and grafana.scopes == frozenset({Scope.READ})
        assert tokens.match("nope") is None
        assert tokens.named("ci") == ci

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "has no tokens"),
            ("[[token]\n", "is not valid TOML"),
            ("x = 1\n[[token]]\nname='a'\n", "unknown keys: \\['x'\\]"),
            ("[[token]]\nname = 'a b'\n", "needs a name"),
            ("[[token]]\nname = 'a'\nscopes = ['read']\n", "exactly one of token and sha256"),
            ("[[token]]\nname = 'a'\ntoken = 'short'\nscopes = ['read']\n", "at least 16"),
            ("[[token]]\nname = 'a'\nsha256 = 'zz'\nscopes = ['read']\n", "64 hex digits"),
            (f"[[token]]\nname = 'a'\ntoken = '{SECRET}'\n", "needs scopes"),
            (
                f"[[token]]\nname = 'a'\ntoken = '{SECRET}'\nscopes = ['write']\n",
                "unknown scope 'write'",
            ),
            (
                f"[[token]]\nname = 'a'\ntoken = '{SECRET}'\nscopes = ['read']\ntypes = ['x']\n",
                "restrict 'submit', which it lacks",
            ),
            (
                f"[[token]]\nname = 'a'\ntoken = '{SECRET}'\nscopes = ['submit']\nqueues = []\n",
                "queues is empty",
            ),
            (
                f"[[token]]\nname = 'a'\ntoken = '{SECRET}'\nscopes = ['read']\nsecret = 1\n",
                "unknown keys: \\['secret'\\]",
            ),
            (
                f"[[token]]\nname='a'\ntoken='{SECRET}'\nscopes=['read']\n"
                f"[[token]]\nname='a'\ntoken='{SECRET}x'\nscopes=['read']\n",
                "two tokens are named 'a'",
            ),
        ],
    )
    def test_mistakes_are_named(self, tmp_path: Path, text: str, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            load_tokens(write(tmp_path, text))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="cannot read the token file"):
            load_tokens(tmp_path / "nope.toml")


class TestSources:
    def test_env_and_cli_tokens_are_admin(self, tmp_path: Path) -> None:
        tokens = from_sources(token="from-the-cli", env_token="from-the-env")
        assert tokens.match("from-the-cli") == Grant("cli", frozenset({Scope.ADMIN}))
        assert tokens.match("from-the-env") == Grant("env", frozenset({Scope.ADMIN}))

    def test_same_secret_twice_is_one_token(self) -> None:
        assert len(from_sources(token="same-same", env_token="same-same").tokens) == 1

    def test_none_leaves_the_server_open(self) -> None:
        assert not from_sources()

    def test_empty_admin_token_refused(self) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            Token.admin("  ")

    def test_names_are_unique(self) -> None:
        with pytest.raises(ConfigurationError, match="named 'x'"):
            Tokens((Token.admin("one-one", "x"), Token.admin("two-two", "x")))
