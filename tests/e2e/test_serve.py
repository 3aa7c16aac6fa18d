"""``trellis serve`` as a process: address, default store, --app, signals, bad options."""

from __future__ import annotations

import signal
import sqlite3
from functools import partial
from pathlib import Path

import httpx
import pytest
from tests.e2e.kit import Server, clean_env, run_main, trellis


def wait_done(url: str, task_id: str) -> dict[str, object]:
    """Poll a task until it has ended (bounded)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for _ in range(500):
            task: dict[str, object] = client.get(f"/tasks/{task_id}").json()
            if task["status"] in ("completed", "failed", "dead", "cancelled"):
                return task
            client.get("/health")  # a round trip between polls instead of a sleep
        raise AssertionError(f"task {task_id} did not end: {task}")


class TestServe:
    def test_listens_and_answers(self, server: Server) -> None:
        """The printed address answers /health and /readyz."""
        assert server.url.startswith("http://127.0.0.1:")
        assert "store: memory://" in server.output
        assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
        assert httpx.get(f"{server.url}/readyz").status_code == 200

    def test_sqlite_in_working_directory(self, tmp_path: Path) -> None:
        """Without --store the tasks live in ./trellis.db, which is named; they survive."""
        first = Server(cwd=tmp_path)
        try:
            assert f"SQLite file {tmp_path / 'trellis.db'}" in first.output
            created = httpx.post(f"{first.url}/tasks", json={"type": "echo", "payload": 7})
            assert wait_done(first.url, created.json()["id"])["status"] == "completed"
        finally:
            assert first.stop() == 0
        assert (tmp_path / "trellis.db").exists()
        second = Server(cwd=tmp_path)
        try:
            task = httpx.get(f"{second.url}/tasks/{created.json()['id']}").json()
            assert (task["status"], task["result"]) == ("completed", 7)
        finally:
            assert second.stop(signal.SIGINT) == 0
        assert "stopped" in second.output

    def test_app_option(self, tmp_path: Path) -> None:
        """--app examples.shop:app registers the shop's task types, which run."""
        env = clean_env(SHOP_OUTBOX=str(tmp_path / "outbox"))
        shop = Server("--app", "examples.shop:app", "--store", "memory://", env=env)
        try:
            names = {t["name"] for t in httpx.get(f"{shop.url}/task-types").json()["items"]}
            assert {"send_email", "sales_report"} <= names
            body = {"type": "send_email", "payload": {"to": "ada@example.com", "order_id": 1}}
            created = httpx.post(f"{shop.url}/tasks", json=body).json()
            assert wait_done(shop.url, created["id"])["status"] == "completed"
        finally:
            assert shop.stop() == 0
        assert (tmp_path / "outbox" / f"{created['id']}.eml").exists()

    def test_http_check_is_opt_in(self, server: Server) -> None:
        """Without --enable-http-check, http_check is an unknown type."""
        names = {t["name"] for t in httpx.get(f"{server.url}/task-types").json()["items"]}
        assert names == {"echo", "sleep"}
        body = {"type": "http_check", "payload": {"url": "https://example.com/"}}
        assert httpx.post(f"{server.url}/tasks", json=body).status_code == 400

    @pytest.mark.parametrize("how", ["option", "environment"])
    def test_enable_http_check(self, how: str) -> None:
        """--enable-http-check (or TRELLIS_ENABLE_HTTP_CHECK=1) adds it, fenced: a
        loopback target is refused at submit."""
        if how == "option":
            node = Server("--store", "memory://", "--enable-http-check")
        else:
            node = Server("--store", "memory://", env=clean_env(TRELLIS_ENABLE_HTTP_CHECK="1"))
        try:
            names = {t["name"] for t in httpx.get(f"{node.url}/task-types").json()["items"]}
            assert "http_check" in names
            body = {"type": "http_check", "payload": {"url": f"{node.url}/health"}}
            refused = httpx.post(f"{node.url}/tasks", json=body)
            assert refused.status_code == 400
            assert "loopback" in refused.text
        finally:
            assert node.stop() == 0


class TestShutdown:
    def test_sigterm_ends_event_streams(self) -> None:
        """SIGTERM with a client on /events: the stream ends, the server exits 0."""
        running = Server("--store", "memory://")
        try:
            with (
                httpx.Client(base_url=running.url, timeout=10) as client,
                client.stream("GET", "/events") as stream,
            ):
                lines = stream.iter_lines()
                assert next(lines) == "retry: 2000"
                running.terminate(signal.SIGTERM)
                rest = list(lines)  # returns once the server ends the stream
            assert all(
                not line or line.startswith((":", "id:", "event:", "data:")) for line in rest
            )
        finally:
            assert running.stop() == 0
        assert running.output.endswith("stopped\n")

    def test_a_second_signal_commits_what_finished_and_gives_back_the_rest(
        self, tmp_path: Path
    ) -> None:
        """SIGTERM, then SIGTERM again during a 60 s grace period: the node stops at once
        (exit 1), the finished task is completed, the two it was running are given back —
        queued or retrying, no lease — and none is left ``running``."""
        database = tmp_path / "tasks.db"
        running = Server(
            "--store", f"sqlite:///{database}", "--workers", "2", "--grace-period", "60"
        )
        try:
            post = partial(httpx.post, f"{running.url}/tasks", timeout=10)
            done = post(json={"type": "echo", "payload": {"n": 1}}).json()["id"]
            assert wait_done(running.url, done)["status"] == "completed"
            slow = [
                post(json={"type": "sleep", "payload": {"seconds": 120}}).json()["id"]
                for _ in range(2)
            ]
            with httpx.Client(base_url=running.url, timeout=5) as client:
                for _ in range(500):  # each poll is a round trip, not a sleep
                    now = [client.get(f"/tasks/{task_id}").json()["status"] for task_id in slow]
                    if now == ["running", "running"]:
                        break
                assert now == ["running", "running"]
            running.terminate(signal.SIGTERM)
            running.wait_for_log("stopping: draining")  # one at a time: trio merges signals
            running.process.send_signal(signal.SIGTERM)
            code = running.process.wait(timeout=20)
        finally:
            running.stop()
        assert code == 1
        assert statuses(database, [done]) == ["completed"]
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT status, lease_owner FROM trellis_tasks WHERE status = 'running'"
                " OR lease_owner IS NOT NULL"
            ).fetchall()
        assert rows == []
        assert set(statuses(database, slow)) <= {"queued", "retrying"}


def statuses(database: Path, ids: list[str]) -> list[str]:
    """The tasks' statuses, read straight from the SQLite file (read-only)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        found = dict(conn.execute("SELECT id, status FROM trellis_tasks").fetchall())
    return [found.get(task_id, "?") for task_id in ids]


class TestServeRefuses:
    def test_bad_app(self) -> None:
        """A missing module exits 2 with a clear message, before anything starts."""
        missing = trellis("serve", "--app", "no_such_module:app", "--store", "memory://")
        assert missing.returncode == 2
        assert "cannot import module 'no_such_module'" in missing.stderr

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--app", "examples.shop:nope"), "has no attribute 'nope'"),
            (("--app", "examples.shop"), "must look like module:attribute"),
            (("--app", "examples.shop:PRODUCTS"), "not a trellis_actors.App"),
            (("--bind", "localhost"), "not HOST:PORT"),
            (("--store", "redis://localhost"), "unsupported store URL"),
            (("--workers", "-1"), "is negative"),
        ],
    )
    def test_bad_options(
        self, args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad options exit 2 with a clear message (checked in process)."""
        store = () if "--store" in args else ("--store", "memory://")
        assert run_main("serve", *args, *store) == 2
        assert message in capsys.readouterr().err


class TestEnvironment:
    def test_options_from_variables(self) -> None:
        """TRELLIS_WORKERS and the other options' variables configure a served node."""
        node = Server(env=clean_env(TRELLIS_STORE="memory://", TRELLIS_WORKERS="3"))
        try:
            assert "workers: 3" in node.output
            assert "store: memory://" in node.output
        finally:
            assert node.stop() == 0

    def test_bad_variable_exits_2(self) -> None:
        """A bad value is refused before anything starts, naming the variable."""
        result = trellis("serve", "--store", "memory://", TRELLIS_LEASE="soon")
        assert result.returncode == 2
        assert "environment variable TRELLIS_LEASE='soon' (for --lease)" in result.stderr


class TestPublicBind:
    def test_refused_without_a_token(self, tmp_path: Path) -> None:
        """A non-loopback bind without a token exits 2 saying why, before listening."""
        result = trellis(
            "serve", "--bind", "0.0.0.0:0", "--store", f"sqlite:///{tmp_path / 't.db'}"
        )
        assert result.returncode == 2
        assert "without an API token" in result.stderr
        assert "--insecure-no-auth" in result.stderr

    def test_allowed_when_told(self) -> None:
        """--insecure-no-auth (or a token) lets it serve all the same."""
        server = Server("--store", "memory://", "--bind", "0.0.0.0:0", "--insecure-no-auth")
        try:
            assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        finally:
            assert server.stop() == 0
