"""The ``trellis`` client commands as processes against a real server, and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.e2e.kit import TOKEN, Server, closed_port_url, run_main, trellis


class TestSubmit:
    def test_wait_completed(self, server: Server) -> None:
        """submit --wait prints the id and the result, shows progress, and exits 0."""
        result = trellis(
            "submit", "sleep", "--payload", '{"seconds": 0.3}', "--wait", url=server.url
        )
        assert result.returncode == 0, result.stderr
        task_id, answer = result.stdout.splitlines()
        assert json.loads(answer) == {"slept": 0.3}
        assert "100% completed" in result.stderr
        assert f"task {task_id} completed" in result.stderr

    def test_wait_failed(self, server: Server) -> None:
        """A task that ends dead makes submit --wait exit 1, saying why."""
        result = trellis(
            "submit",
            "sleep",
            "--payload",
            '{"seconds": 60}',
            "--task-timeout",
            "0.05",
            "--max-attempts",
            "1",
            "--wait",
            url=server.url,
        )
        assert result.returncode == 1
        assert "ended dead" in result.stderr
        assert "TaskTimeout" in result.stderr

    def test_a_payload_breaking_the_contract_is_refused(self, server: Server) -> None:
        """The type's payload contract is checked at submit: exit 2 naming the field."""
        result = trellis("submit", "sleep", "--payload", '{"secs": 1}', url=server.url)
        assert result.returncode == 2
        assert "payload.seconds" in result.stderr

    def test_payload_file_and_json(self, server: Server, tmp_path: Path) -> None:
        """--payload @file reads JSON from a file; --json prints the task."""
        (tmp_path / "payload.json").write_text('{"from": "file"}')
        result = trellis(
            "submit", "echo", "--payload", f"@{tmp_path / 'payload.json'}", "--json",
            "--queue", "files", url=server.url,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        task = json.loads(result.stdout)
        assert (task["payload"], task["queue"]) == ({"from": "file"}, "files")


class TestTasks:
    def test_list_show_cancel(self, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
        """A delayed task is listed, shown and cancelled; cancelling again exits 1."""
        body = {"type": "echo", "delay": 3600, "queue": "later"}
        task_id = httpx.post(f"{server.url}/tasks", json=body).json()["id"]
        listed = trellis("tasks", "list", "--queue", "later", url=server.url)
        assert listed.returncode == 0
        assert task_id in listed.stdout and "pending" in listed.stdout
        shown = trellis("tasks", "show", task_id, url=server.url)
        assert shown.returncode == 0
        assert "(new) -> pending" in shown.stdout
        cancelled = trellis("tasks", "cancel", task_id, url=server.url)
        assert (cancelled.returncode, cancelled.stdout.strip()) == (
            0,
            f"cancelled task {task_id} (now cancelled)",
        )
        assert run_main("tasks", "cancel", task_id, "--url", server.url) == 1
        assert "cannot move from cancelled" in capsys.readouterr().err

    def test_requeue(self, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
        """A dead task is requeued; one that is not dead is refused with exit 1."""
        waiting = httpx.post(f"{server.url}/tasks", json={"type": "echo", "delay": 3600})
        assert run_main("tasks", "requeue", waiting.json()["id"], "--url", server.url) == 1
        assert "only dead tasks can be requeued" in capsys.readouterr().err
        dead = trellis(
            "submit",
            "sleep",
            "--payload",
            '{"seconds": 60}',
            "--task-timeout",
            "0.05",
            "--max-attempts",
            "1",
            "--wait",
            url=server.url,
        ).stdout.split()[0]
        assert run_main("tasks", "requeue", dead, "--url", server.url) == 0
        assert f"requeued task {dead}" in capsys.readouterr().out


class TestExitStatuses:
    def test_unreachable(self) -> None:
        """No server at the URL: exit 3 with a hint."""
        result = trellis("tasks", "list", "--url", closed_port_url())
        assert result.returncode == 3
        assert "cannot reach the Trellis server" in result.stderr

    def test_auth_failure(self, secured_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing or wrong token: exit 4; the right one works."""
        url = secured_server.url
        missing = trellis("tasks", "list", url=url)
        assert (missing.returncode, "not authorised" in missing.stderr) == (4, True)
        assert run_main("tasks", "list", "--url", url, "--token", "nope") == 4
        assert run_main("tasks", "list", "--url", url, "--token", TOKEN) == 0

    def test_bad_arguments_process(self, server: Server) -> None:
        """A usage error, and input the server refuses as invalid: exit 2 (as processes)."""
        usage = trellis("submit", url=server.url)
        assert (usage.returncode, "required: type" in usage.stderr) == (2, True)
        refused = trellis("submit", "no_such_type", url=server.url)
        assert refused.returncode == 2
        assert "unknown task type 'no_such_type'; known types:" in refused.stderr

    @pytest.mark.parametrize(
        "args",
        [
            ("submit", "echo", "--priority", "high"),
            ("submit", "echo", "--payload", "{not json"),
            ("submit", "echo", "--payload", "[" * 5000 + "]" * 5000),  # no RecursionError
            ("submit", "echo", "--payload", '"a\\u0000b"'),
            ("submit", "echo", "--priority", str(2**31)),
            ("submit", "echo", "--payload", "@/no/such/file.json"),
            ("submit", "echo", "--delay", "-1"),
            ("tasks", "show", "no-such-id"),
            ("tasks", "list", "--status", "sleepy"),
            ("tasks",),
            ("frobnicate",),
        ],
    )
    def test_bad_arguments(
        self, server: Server, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad arguments, or input the server refuses as invalid: exit 2 (in process)."""
        assert run_main(*args, "--url", server.url) == 2
        assert capsys.readouterr().err.strip()


class TestHelp:
    @pytest.mark.parametrize(
        "command",
        [(), ("serve",), ("worker",), ("migrate",), ("submit",), ("tasks",), ("tasks", "list"),
         ("tasks", "show"), ("tasks", "cancel"), ("tasks", "requeue")],
    )  # fmt: skip
    def test_help(self, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
        """Every command has --help, listing the exit statuses."""
        assert run_main(*command, "--help") == 0
        assert "exit status" in capsys.readouterr().out

    def test_console_script(self) -> None:
        """The ``trellis`` console script is installed next to the interpreter, and
        ``python -m trellis_actors`` is the same command."""
        script = Path(sys.executable).parent / "trellis"
        result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
        assert result.stdout.startswith("trellis ")
        assert trellis("--help").stdout.startswith("usage: trellis")


class TestNodeCommands:
    def test_migrate(self, tmp_path: Path) -> None:
        """migrate creates a SQLite store's schema and names the file."""
        result = trellis("migrate", "--store", f"sqlite:///{tmp_path / 'm.db'}")
        assert result.returncode == 0, result.stderr
        assert f"SQLite file {tmp_path / 'm.db'}" in result.stdout
        assert (tmp_path / "m.db").exists()

    def test_retention_takes_durations(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--retain-completed and --retain-dead take durations; anything else exits 2."""
        assert run_main("serve", "--retain-completed", "soon") == 2
        assert "'soon' is not a duration" in capsys.readouterr().err
        assert run_main("worker", "--store", "memory://", "--retain-dead", "0s") == 2

    def test_worker_needs_a_shared_store(self, capsys: pytest.CaptureFixture[str]) -> None:
        """worker refuses to run without a store, or on memory://."""
        assert run_main("worker") == 2
        assert run_main("worker", "--store", "memory://") == 2
        assert "would see no tasks" in capsys.readouterr().err
