"""``trellis tasks cancel|requeue|purge`` with a filter, against a real server; and the
``--retain-*`` options of a node."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from tests.e2e.kit import Server, run_main, trellis

from trellis_actors import cli


def delayed(server: Server, queue: str, count: int) -> list[str]:
    body = [{"type": "echo", "delay": 3600, "queue": queue} for _ in range(count)]
    return [task["id"] for task in httpx.post(f"{server.url}/tasks", json=body).json()]


class TestBulkCommands:
    def test_cancel_then_purge_by_filter(self, server: Server) -> None:
        """A dry run counts, the cancel prints how many it cancelled, a purge deletes them;
        tasks outside the filter are left alone."""
        queue = f"bulk-{uuid.uuid4().hex[:8]}"
        ids = delayed(server, queue, 3)
        (other,) = delayed(server, queue + "-other", 1)
        dry = trellis("tasks", "cancel", "--queue", queue, "--dry-run", url=server.url)
        assert (dry.returncode, dry.stdout.strip()) == (0, "3 tasks would be cancelled")
        done = trellis(
            "tasks", "cancel", "--queue", queue, "--status", "pending", "--status", "queued",
            "--created-before", "9999-01-01", url=server.url,
        )  # fmt: skip
        assert (done.returncode, done.stdout.strip()) == (0, "cancelled 3 tasks"), done.stderr
        for task_id in ids:
            assert httpx.get(f"{server.url}/tasks/{task_id}").json()["status"] == "cancelled"
        assert httpx.get(f"{server.url}/tasks/{other}").json()["status"] == "pending"
        purged = trellis("tasks", "purge", "--queue", queue, "--json", url=server.url)
        assert purged.returncode == 0, purged.stderr
        assert json.loads(purged.stdout) == {"touched": 3, "dry_run": False}
        for task_id in ids:
            assert httpx.get(f"{server.url}/tasks/{task_id}").status_code == 404

    def test_requeue_dead_tasks_by_type_and_status(self, server: Server) -> None:
        queue = f"bulk-{uuid.uuid4().hex[:8]}"
        body = {
            "type": "sleep", "payload": {"seconds": 60}, "timeout": 0.05, "max_attempts": 1,
            "queue": queue,
        }  # fmt: skip
        task_id = httpx.post(f"{server.url}/tasks", json=body).json()["id"]
        waited = httpx.get(f"{server.url}/tasks/{task_id}/wait", params={"timeout": 10}).json()
        assert waited["status"] == "dead"
        done = trellis("tasks", "requeue", "--status", "dead", "--queue", queue, url=server.url)
        assert (done.returncode, done.stdout.strip()) == (0, "requeued 1 task"), done.stderr

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (("tasks", "cancel"), "give a task id, or a filter"),
            (("tasks", "cancel", "some-id", "--type", "echo"), "not both"),
            (("tasks", "requeue", "--status", "queued"), "touches only dead tasks"),
            (("tasks", "purge"), "needs a filter"),
            (("tasks", "purge", "--status", "running"), "touches only"),
            (("tasks", "cancel", "--created-after", "soon"), "ISO 8601"),
        ],
    )
    def test_a_bad_filter_exits_2(
        self, server: Server, args: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run_main(*args, "--url", server.url) == 2
        assert says in capsys.readouterr().err

    @pytest.mark.parametrize("action", ["cancel", "requeue", "purge"])
    def test_help(self, action: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert run_main("tasks", action, "--help") == 0
        assert "--created-before" in capsys.readouterr().out


class TestRetentionOptions:
    def test_every_ended_status_has_an_option_and_a_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRELLIS_RETAIN_CANCELLED", "2h")
        args = cli.build_parser().parse_args(["serve", "--retain-failed", "1d"])
        assert (args.retain_completed, args.retain_failed, args.retain_dead) == (
            None,
            86400.0,
            None,
        )
        assert args.retain_cancelled == 7200.0

    def test_they_take_durations(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert run_main("serve", "--retain-failed", "soon") == 2
        assert "'soon' is not a duration" in capsys.readouterr().err
        assert run_main("worker", "--store", "memory://", "--retain-cancelled", "0s") == 2
