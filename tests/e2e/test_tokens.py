"""``trellis serve`` with a token file, and its login cookie behind a proxy (real servers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.kit import Server, clean_env, run_main, trellis

from trellis_actors.access.tokens import digest

READER = "reader-secret-0123456789"
SUBMITTER = "submitter-secret-0123456789"
FILE = f"""
[[token]]
name = "dashboards"
sha256 = "{digest(READER)}"
scopes = ["read"]

[[token]]
name = "producer"
token = "{SUBMITTER}"
scopes = ["submit"]
types = ["echo"]
"""


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.toml"
    path.write_text(FILE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scoped_server(token_file: Path) -> Iterator[Server]:
    """Tokens from TRELLIS_TOKEN_FILE (no secret on the command line); a trusted proxy."""
    env = clean_env(TRELLIS_TOKEN_FILE=str(token_file), TRELLIS_FORWARDED_ALLOW_IPS="127.0.0.1")
    running = Server("--store", "memory://", env=env)
    yield running
    assert running.stop() == 0, "".join(running.stderr)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class TestTokenFile:
    def test_scopes_are_enforced(self, scoped_server: Server) -> None:
        url = scoped_server.url
        assert httpx.get(f"{url}/tasks", headers=bearer(READER)).status_code == 200
        refused = httpx.post(f"{url}/tasks", json={"type": "echo"}, headers=bearer(READER))
        assert refused.status_code == 403 and refused.json()["error"]["scope"] == "submit"
        made = httpx.post(f"{url}/tasks", json={"type": "echo"}, headers=bearer(SUBMITTER))
        assert made.status_code == 201
        other = httpx.post(f"{url}/tasks", json={"type": "sleep"}, headers=bearer(SUBMITTER))
        assert other.status_code == 403
        assert httpx.get(f"{url}/tasks", headers=bearer(SUBMITTER)).status_code == 403
        assert httpx.get(f"{url}/tasks").status_code == 401

    def test_client_commands_exit_4_without_the_scope(self, scoped_server: Server) -> None:
        done = trellis("tasks", "list", url=scoped_server.url, TRELLIS_API_TOKEN=SUBMITTER)
        assert done.returncode == 4, done.stderr
        assert "read" in done.stderr

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[[token]]\nname = 'x'\n", "exactly one of token and sha256"),
            ("not toml at all [", "is not valid TOML"),
            (
                "[[token]]\nname='x'\ntoken='0123456789abcdefgh'\nscopes=['root']\n",
                "unknown scope 'root'",
            ),
        ],
    )
    def test_bad_file_exits_2(
        self, tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad token file stops ``serve`` before it starts, saying what is wrong."""
        path = tmp_path / "tokens.toml"
        path.write_text(text, encoding="utf-8")
        assert run_main("serve", "--store", "memory://", "--token-file", str(path)) == 2
        error = capsys.readouterr().err
        assert message in error and str(path) in error

    def test_missing_file_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        missing = tmp_path / "nope.toml"
        assert run_main("serve", "--store", "memory://", "--token-file", str(missing)) == 2
        assert "cannot read the token file" in capsys.readouterr().err

    def test_bad_forwarded_ips_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        args = ("serve", "--store", "memory://", "--forwarded-allow-ips", "10.0.0.0/33")
        assert run_main(*args) == 2
        assert "is not an IP address or network" in capsys.readouterr().err


def login_cookie(url: str, headers: dict[str, str]) -> str:
    """Log in to the UI at ``url`` with the reader token; the session's Set-Cookie.
    (Cookies are passed by hand: a Secure one would not go back over plain http.)"""
    with httpx.Client(base_url=url, headers=headers) as client:
        first = client.get("/ui/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', first.text)
        assert csrf is not None
        nonce = first.headers["set-cookie"].split(";", 1)[0]
        client.cookies.clear()
        answer = client.post(
            "/ui/login",
            data={"token": READER, "csrf_token": csrf.group(1), "next": "/ui/"},
            headers={"Cookie": nonce},
        )
        assert answer.status_code == 303, answer.text
        return next(
            h for h in answer.headers.get_list("set-cookie") if h.startswith("trellis_ui_session=")
        )


class TestBehindAProxy:
    def test_secure_cookie_from_a_trusted_proxy(self, scoped_server: Server) -> None:
        """The proxy at 127.0.0.1 says the request came over TLS: the cookie is Secure."""
        cookie = login_cookie(scoped_server.url, {"X-Forwarded-Proto": "https"})
        assert "Secure" in cookie

    def test_not_from_an_untrusted_one(self, token_file: Path) -> None:
        """Without --forwarded-allow-ips the header is anybody's word: ignored."""
        running = Server("--store", "memory://", "--token-file", str(token_file))
        try:
            cookie = login_cookie(running.url, {"X-Forwarded-Proto": "https"})
            assert "Secure" not in cookie
        finally:
            assert running.stop() == 0
