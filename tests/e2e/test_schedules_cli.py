"""``trellis schedules …`` as processes against a real ``trellis serve``, and exit statuses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.kit import TOKEN, Server, closed_port_url, run_main, trellis

#: How long a task fired by a schedule may take to be stored and to complete.
FIRE_TIMEOUT = 15.0
ACTIONS = ("pause", "resume", "rm", "run")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A server of their own for these tests (schedules outlive the test that adds them)."""
    running = Server("--app", "tests.e2e.apps:app", "--store", "memory://", "--workers", "2")
    yield running
    assert running.stop() == 0, "".join(running.stderr)


def schedules(server: Server) -> dict[str, dict[str, Any]]:
    """The server's schedules by name."""
    items = httpx.get(f"{server.url}/schedules").json()["items"]
    return {item["name"]: item for item in items}


def ended(server: Server, task_id: str) -> dict[str, Any]:
    """The task once it has ended (polled: the server is another process)."""
    deadline = time.monotonic() + FIRE_TIMEOUT
    while time.monotonic() < deadline:
        task: dict[str, Any] = httpx.get(f"{server.url}/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed", "dead", "cancelled"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end within {FIRE_TIMEOUT}s")


class TestLifecycle:
    def test_add_list_pause_resume_run_rm(self, server: Server) -> None:
        """A cron schedule is added, listed, paused and resumed by name, fired by hand (its
        task runs) and removed."""
        added = trellis(
            "schedules", "add", "nightly", "echo", "--cron", "0 2 * * *",
            "--timezone", "Europe/Paris", "--payload", '{"scope": "all"}', "--priority", "3",
            url=server.url,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        schedule_id = added.stdout.strip()
        assert "created schedule nightly (cron 0 2 * * * (Europe/Paris)): next run at" in (
            added.stderr
        )
        stored = schedules(server)["nightly"]
        assert (stored["id"], stored["priority"], stored["payload"]) == (
            schedule_id,
            3,
            {"scope": "all"},
        )

        listed = trellis("schedules", "list", url=server.url)
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split() == ["NAME", "SPEC", "NEXT", "RUN", "LAST", "RUN", "PAUSED"]
        (row,) = [row for row in rows if row.startswith("nightly ")]
        assert "cron 0 2 * * * (Europe/Paris)" in row
        assert row.split()[-3:] == [stored["next_run_at"], "-", "no"]

        paused = trellis("schedules", "pause", "nightly", url=server.url)
        assert (paused.returncode, paused.stdout.strip()) == (
            0,
            f"paused schedule nightly ({schedule_id})",
        )
        assert schedules(server)["nightly"]["paused"] is True
        assert trellis("schedules", "list", url=server.url).stdout.count(" yes") == 1

        resumed = trellis("schedules", "resume", schedule_id, url=server.url)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.startswith(f"resumed schedule nightly ({schedule_id}); next run at")
        assert schedules(server)["nightly"]["paused"] is False

        fired = trellis("schedules", "run", "nightly", url=server.url)
        assert fired.returncode == 0, fired.stderr
        task_id = fired.stdout.strip()
        assert f"fired schedule nightly: echo task {task_id}" in fired.stderr
        task = ended(server, task_id)
        assert (task["status"], task["result"]) == ("completed", {"scope": "all"})
        assert task["schedule_id"] == schedule_id

        removed = trellis("schedules", "rm", "nightly", url=server.url)
        assert (removed.returncode, removed.stdout.strip()) == (
            0,
            f"deleted schedule nightly ({schedule_id})",
        )
        assert "nightly" not in schedules(server)
        assert httpx.get(f"{server.url}/schedules/{schedule_id}").status_code == 404
        assert httpx.get(f"{server.url}/tasks/{task_id}").status_code == 200  # tasks stay

    def test_every_fires_on_its_own(self, server: Server) -> None:
        """An interval schedule fires by itself on the server; its tasks run."""
        added = trellis(
            "schedules", "add", "ticker", "echo", "--every", "1s", "--payload", "7",
            url=server.url,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        schedule_id = added.stdout.strip()
        try:
            deadline = time.monotonic() + FIRE_TIMEOUT
            fired: list[dict[str, Any]] = []
            while not fired and time.monotonic() < deadline:
                page = httpx.get(f"{server.url}/tasks", params={"type": "echo"}).json()
                fired = [task for task in page["items"] if task["schedule_id"] == schedule_id]
                time.sleep(0.05)
            assert fired, "the schedule did not fire"
            assert ended(server, fired[-1]["id"])["result"] == 7
        finally:
            assert trellis("schedules", "rm", schedule_id, url=server.url).returncode == 0

    def test_json_and_options(self, server: Server, tmp_path: Path) -> None:
        """--json prints the schedule; a one-shot takes --at, @file payloads, a queue, a
        misfire policy, and can start paused."""
        (tmp_path / "payload.json").write_text('{"from": "file"}')
        added = trellis(
            "schedules", "add", "once", "echo", "--at", "2999-01-01T09:00:00",
            "--payload", f"@{tmp_path / 'payload.json'}", "--queue", "later",
            "--misfire", "run_once", "--paused", "--json", url=server.url,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        schedule = json.loads(added.stdout)
        assert (schedule["at"], schedule["payload"], schedule["queue"]) == (
            "2999-01-01T09:00:00Z",
            {"from": "file"},
            "later",
        )
        assert (schedule["misfire"], schedule["paused"]) == ("run_once", True)
        listing = json.loads(trellis("schedules", "list", "--json", url=server.url).stdout)
        assert schedule in listing["items"]
        removed = trellis("schedules", "rm", "once", "--json", url=server.url)
        assert json.loads(removed.stdout)["id"] == schedule["id"]

    def test_delete_answers_no_content(self, server: Server) -> None:
        """DELETE /schedules/{id} answers 204 with no body and no content type."""
        body = {"name": "short-lived", "task_type": "echo", "every": "1h"}
        created = httpx.post(f"{server.url}/schedules", json=body).json()
        response = httpx.delete(f"{server.url}/schedules/{created['id']}")
        assert (response.status_code, response.content) == (204, b"")
        assert "content-type" not in response.headers


class TestExitStatuses:
    def test_bad_arguments_process(self, server: Server) -> None:
        """A usage error, and a spec the server refuses: exit 2 (as processes)."""
        usage = trellis("schedules", "add", "x", "echo", url=server.url)
        assert usage.returncode == 2
        assert "one of the arguments --every --cron --at is required" in usage.stderr
        refused = trellis("schedules", "add", "x", "echo", "--cron", "0 0 30 2 *", url=server.url)
        assert refused.returncode == 2
        assert "never fires (field: cron)" in refused.stderr
        unknown = trellis("schedules", "add", "x", "nope", "--every", "5m", url=server.url)
        assert unknown.returncode == 2
        assert "unknown task type 'nope'; known types: echo, fail" in unknown.stderr
        assert "x" not in schedules(server)

    @pytest.mark.parametrize(
        "args",
        [
            ("add", "x", "echo", "--every", "5m", "--cron", "0 * * * *"),
            ("add", "x", "echo", "--every", "5m", "--misfire", "never"),
            ("add", "x", "echo", "--every", "5m", "--priority", "high"),
            ("add", "x", "echo", "--every", "5m", "--timezone", "Europe/Paris"),
            ("add", "x", "echo", "--every", "5m", "--payload", "{not json"),
            ("add", "x", "echo", "--every", "0.1s"),
            ("add", "x", "echo", "--cron", "0 9 * * *", "--timezone", "Mars/Olympus"),
            ("add", "x", "echo", "--at", "tomorrow"),
            ("add", "bad name", "echo", "--every", "5m"),
            ("rm",),
            (),
        ],
    )
    def test_bad_arguments(
        self, server: Server, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad arguments, or input the server refuses as invalid: exit 2 (in process)."""
        assert run_main("schedules", *args, "--url", server.url) == 2
        assert capsys.readouterr().err.strip()
        assert "x" not in schedules(server)

    @pytest.mark.parametrize("action", ACTIONS)
    def test_unknown_schedule(self, server: Server, action: str) -> None:
        """An id or name no schedule has: exit 2, saying so."""
        result = trellis("schedules", action, "no-such-schedule", url=server.url)
        assert result.returncode == 2
        assert "no schedule with id or name 'no-such-schedule'" in result.stderr

    def test_name_taken(self, server: Server) -> None:
        """A name already taken is a conflict: exit 1."""
        first = trellis("schedules", "add", "taken", "echo", "--every", "1h", url=server.url)
        assert first.returncode == 0, first.stderr
        again = trellis("schedules", "add", "taken", "echo", "--every", "2h", url=server.url)
        assert again.returncode == 1
        assert "a schedule named 'taken' already exists (field: name)" in again.stderr
        assert schedules(server)["taken"]["every"] == 3600.0
        assert trellis("schedules", "rm", "taken", url=server.url).returncode == 0

    @pytest.mark.parametrize(
        "args", [("list",), ("add", "x", "echo", "--every", "5m"), ("pause", "x")]
    )
    def test_unreachable(self, args: tuple[str, ...]) -> None:
        """No server at the URL: exit 3 with a hint."""
        result = trellis("schedules", *args, "--url", closed_port_url())
        assert result.returncode == 3
        assert "cannot reach the Trellis server" in result.stderr

    def test_auth(self, secured_server: Server) -> None:
        """A missing token: exit 4; the right one works."""
        url = secured_server.url
        missing = trellis("schedules", "list", url=url)
        assert (missing.returncode, "not authorised" in missing.stderr) == (4, True)
        assert trellis("schedules", "list", url=url, TRELLIS_API_TOKEN=TOKEN).returncode == 0


class TestHelp:
    @pytest.mark.parametrize("action", [(), ("list",), ("add",), *((a,) for a in ACTIONS)])
    def test_help(self, action: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
        """Every schedules command has --help, listing the exit statuses."""
        assert run_main("schedules", *action, "--help") == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: trellis schedules {' '.join(action)}".rstrip())
        assert "exit status" in out
