"""Every libpq connection string names a PostgreSQL store: URLs (TCP or Unix socket) and
keyword/value strings, passed to libpq as given; passwords never shown."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tests.integration.conftest import PG_URL

from trellis_actors import TaskStatus, open_runtime
from trellis_actors.errors import ConfigurationError
from trellis_actors.stores import NewTask, open_store, redact
from trellis_actors.stores.postgres import PostgresStore, parse_url

NOW = 1_000.0


class TestParse:
    @pytest.mark.parametrize(
        "url",
        [
            "postgresql:///db",
            "postgresql:///db?host=/var/run/postgresql",
            "postgresql://u@h:5432/db?sslmode=disable",
            "postgres://u:p%40ss@h/db?options=-c%20application_name%3Dx",
            "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
            "host=/var/run/postgresql dbname=db",
            "host=127.0.0.1 port=5432 dbname=db user=u password='a b'",
        ],
    )
    def test_given_to_libpq_as_written(self, url: str) -> None:
        """Nothing is rebuilt: the socket forms keep their empty host, encodings stay."""
        assert parse_url(url) == (url, 1, 4)

    def test_pool_options_are_ours_in_both_forms(self) -> None:
        """pool_min and pool_max are taken out of a URL's query and of keywords alike."""
        assert parse_url("postgresql:///db?pool_max=8&host=/run/pg&pool_min=2") == (
            "postgresql:///db?host=/run/pg",
            2,
            8,
        )
        assert parse_url("pool_min=0 host=h dbname=db pool_max=2") == ("host=h dbname=db", 0, 2)

    @pytest.mark.parametrize(
        "url", ["postgresql://u:secret@h/db?nonsense=1", "host=h password=secret dbname"]
    )
    def test_what_libpq_refuses_is_refused_without_the_password(self, url: str) -> None:
        """A string libpq cannot parse is a ConfigurationError that does not show it."""
        with pytest.raises(ConfigurationError, match="bad PostgreSQL URL") as caught:
            parse_url(url)
        assert "secret" not in str(caught.value)

    def test_keywords_open_a_postgres_store(self) -> None:
        """open_store takes a keyword string for PostgreSQL (only libpq reads those)."""
        assert isinstance(open_store("host=h dbname=db"), PostgresStore)
        assert isinstance(open_store("  dbname=db"), PostgresStore)
        with pytest.raises(ConfigurationError, match="no scheme"):
            open_store("tasks.db")


class TestRedact:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u:se@cret@h/db?sslmode=x", "postgresql://u:***@h/db?sslmode=x"),
            ("postgresql:///db?user=u&password=secret", "postgresql:///db?user=u&password=***"),
            ("host=h password=secret dbname=db", "host=h password=*** dbname=db"),
            ("host=h password='sec ret' dbname=db", "host=h password=*** dbname=db"),
            (
                "postgresql:///db?host=/var/run/postgresql",
                "postgresql:///db?host=/var/run/postgresql",
            ),
            ("sqlite:///tasks.db", "sqlite:///tasks.db"),
        ],
    )
    def test_passwords_are_hidden(self, url: str, shown: str) -> None:
        """In the URL's user info, its query, or a keyword string."""
        assert redact(url) == shown


# -- against the real server --------------------------------------------------------------
def socket_dir(server: str) -> str:
    """The directory of the server's Unix socket; skips (fails in CI) without one."""
    with psycopg.connect(server, autocommit=True, connect_timeout=3) as conn:
        directories = conn.execute("SHOW unix_socket_directories").fetchone()
        port = conn.info.port
    found = [
        folder.strip()
        for folder in (directories[0] if directories else "").split(",")
        if folder.strip() and (Path(folder.strip()) / f".s.PGSQL.{port}").exists()
    ]
    if not found:
        message = f"the PostgreSQL server has no Unix socket here ({directories})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found[0]


async def round_trip(url: str) -> None:
    """Open a store at ``url``, store a task and read it back."""
    store = open_store(url)
    await store.open()
    try:
        (submitted,), _ = await store.enqueue([NewTask("t", {"via": "url"})], NOW)
        got = await store.get(submitted.task.id)
        assert got is not None and got.payload == {"via": "url"}
        assert await store.ping()
    finally:
        await store.close()


@pytest.mark.postgres
class TestServer:
    async def test_unix_socket_url_with_host(self, pg_url: str) -> None:
        """``postgresql:///db?host=/socket/dir`` reaches the server over its socket."""
        folder = socket_dir(PG_URL)
        params = conninfo_to_dict(pg_url)
        url = f"postgresql:///{params['dbname']}?host={folder}&user={params.get('user', '')}"
        await round_trip(url)

    async def test_unix_socket_url_alone(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``postgresql:///db``: libpq fills in the rest (here from PGHOST and PGUSER)."""
        folder = socket_dir(PG_URL)
        params = conninfo_to_dict(pg_url)
        monkeypatch.setenv("PGHOST", folder)
        monkeypatch.setenv("PGUSER", str(params.get("user", "")))
        await round_trip(f"postgresql:///{params['dbname']}")

    async def test_keywords_over_tcp(self, pg_url: str) -> None:
        """``host=… port=… dbname=… user=…`` over TCP; pool options ride along."""
        dsn = make_conninfo("", **conninfo_to_dict(pg_url))
        assert "://" not in dsn and "dbname=" in dsn
        await round_trip(dsn + " pool_max=2")

    async def test_a_runtime_on_keywords(self, pg_url: str) -> None:
        """A whole runtime on a keyword string runs a task; its log shows no password."""
        dsn = make_conninfo("", **conninfo_to_dict(pg_url), password="not-needed-here")
        async with open_runtime(store=dsn, workers=1) as rt:
            task = await rt.submit("echo", {"hello": "keywords"})
            done = await rt.wait(task.id, timeout=20)
            assert done.status is TaskStatus.COMPLETED
            assert "not-needed-here" not in str(await rt.stats())
