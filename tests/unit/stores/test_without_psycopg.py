"""Without psycopg (an extra): the package, its CLI and HTTP app import, and asking for a
PostgreSQL store says what to install instead of raising ImportError.

Each check runs in a fresh interpreter where ``sys.modules['psycopg'] = None`` makes any
``import psycopg`` fail, as it does where psycopg is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trellis_actors.stores import POSTGRES_HINT

BLOCK = "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"


def run_python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if path is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


class TestWithoutPsycopg:
    def test_package_cli_and_http_import(self) -> None:
        """trellis_actors, its CLI and its HTTP app import without touching psycopg."""
        code = BLOCK + textwrap.dedent(
            """
            import trellis_actors, trellis_actors.cli, trellis_actors.http
            import trellis_actors.http.app, trellis_actors.http.node, trellis_actors.stores
            assert sys.modules["psycopg"] is None
            print("ok")
            """
        )
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ok"

    @pytest.mark.parametrize("url", ["postgresql://x", "postgres://x/db", "host=x dbname=y"])
    def test_open_store_names_the_extra(self, url: str) -> None:
        """open_store raises ConfigurationError with the pip command, not ImportError."""
        code = BLOCK + textwrap.dedent(
            f"""
            from trellis_actors.errors import ConfigurationError
            from trellis_actors.stores import open_store
            try:
                open_store({url!r})
            except ConfigurationError as exc:
                print(exc)
            """
        )
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == POSTGRES_HINT

    @pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
    def test_cli_names_the_extra(self, command: str) -> None:
        """trellis serve/worker/migrate --store postgresql://… exit 2 with the hint."""
        code = BLOCK + textwrap.dedent(
            f"""
            from trellis_actors.cli import main
            sys.exit(main([{command!r}, "--store", "postgresql://x/db"]))
            """
        )
        result = run_python(code)
        assert result.returncode == 2, result.stderr
        assert POSTGRES_HINT in result.stderr
        assert "Traceback" not in result.stderr

    def test_psycopg_without_libpq(self, tmp_path: Path) -> None:
        """psycopg installed but unable to load libpq: the hint names the binary extra."""
        (tmp_path / "psycopg").mkdir()
        (tmp_path / "psycopg" / "__init__.py").write_text(
            "raise ImportError('no pq wrapper available.\\n"
            "- couldn\\'t import psycopg \\'python\\' implementation: libpq library not found')\n"
        )
        code = textwrap.dedent(
            """
            from trellis_actors.errors import ConfigurationError
            from trellis_actors.stores import open_store
            try:
                open_store("postgresql://x")
            except ConfigurationError as exc:
                print(exc)
            """
        )
        result = run_python(code, path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "trellis-actors[postgres-binary]" in result.stdout
        assert "libpq library not found" in result.stdout
