"""Every option of ``serve``, ``worker`` and ``migrate`` has a ``TRELLIS_*`` variable, read
as the option reads its argument, and docs/operations.md lists them all."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from trellis_actors import cli
from trellis_actors.cli import build_parser
from trellis_actors.cli_env import (
    EnvironmentParser,
    bind_environment,
    env_name,
    environment_table,
)

DOCS = Path(__file__).parents[2] / "docs" / "operations.md"
NODE_COMMANDS = ("serve", "worker", "migrate")


@pytest.fixture(autouse=True)
def no_trellis_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the environment the tests run in leaks into a parse."""
    import os

    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)


def subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("trellis has no commands")


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)
    ]


class TestEveryOption:
    """The variables come from the parser, so none is forgotten."""

    @pytest.mark.parametrize("command", NODE_COMMANDS)
    def test_every_option_has_a_variable(self, command: str) -> None:
        """Each option of the command is bound to a TRELLIS_* variable its help names."""
        parser = subparsers()[command]
        assert isinstance(parser, EnvironmentParser)
        bound = {id(action): name for name, action in parser.environment.items()}
        for action in options(parser):
            name = bound.get(id(action))
            assert name is not None, f"{command} {action.option_strings} has no variable"
            assert name.startswith("TRELLIS_")
            assert action.help and action.help.count(f"env {name}") == 1

    def test_names_are_derived_from_the_option(self) -> None:
        """--max-body is TRELLIS_MAX_BODY; the historic names stay."""
        serve = subparsers()["serve"]
        assert isinstance(serve, EnvironmentParser)
        by_flag = {action.option_strings[0]: name for name, action in serve.environment.items()}
        assert by_flag["--max-body"] == "TRELLIS_MAX_BODY"
        assert by_flag["--lease"] == "TRELLIS_LEASE"
        assert by_flag["--token"] == "TRELLIS_API_TOKEN"
        assert by_flag["--allowed-host"] == "TRELLIS_ALLOWED_HOSTS"
        assert by_flag["--cors-origin"] == "TRELLIS_CORS_ORIGINS"

    def test_an_option_added_later_gets_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An option nobody wrote a variable for is bound and read all the same."""
        parser = EnvironmentParser(prog="t")
        parser.add_argument("--max-connections", type=int, default=100, help="most connections")
        parser.add_argument("--quiet", action="store_true")  # no help of its own
        bind_environment(parser)
        connections, quiet = options(parser)
        assert env_name(connections) == "TRELLIS_MAX_CONNECTIONS"
        assert quiet.help == "env TRELLIS_QUIET"
        monkeypatch.setenv("TRELLIS_MAX_CONNECTIONS", "7")
        monkeypatch.setenv("TRELLIS_QUIET", "on")
        args = parser.parse_args([])
        assert (args.max_connections, args.quiet) == (7, True)

    def test_an_action_without_a_rule_is_refused(self) -> None:
        """A kind of option the mechanism cannot read fails when the parser is built."""
        parser = EnvironmentParser(prog="t")
        parser.add_argument("--verbose", "-v", action="count", help="louder")
        with pytest.raises(TypeError, match="--verbose: no rule reads a _CountAction"):
            bind_environment(parser)

    def test_docs_list_every_variable(self) -> None:
        """docs/operations.md carries the table made from the parser, as it is now."""
        table = environment_table(build_parser())
        assert table in DOCS.read_text(), (
            "docs/operations.md is out of date: run "
            "python -m trellis_actors.cli --write-env-table docs/operations.md"
        )
        for parser in (subparsers()[c] for c in NODE_COMMANDS):
            assert isinstance(parser, EnvironmentParser)
            for name in parser.environment:
                assert f"| `{name}` |" in table


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


class TestReading:
    """A variable is read on a real parse, as its option reads its argument."""

    @pytest.mark.parametrize(
        ("variable", "value", "dest", "expected"),
        [
            ("TRELLIS_WORKERS", "5", "workers", 5),
            ("TRELLIS_MAX_BODY", "2048", "max_body", 2048),
            ("TRELLIS_LEASE", "12.5", "lease", 12.5),
            ("TRELLIS_GRACE_PERIOD", "3", "grace_period", 3.0),
            ("TRELLIS_RETAIN_COMPLETED", "7d", "retain_completed", 7 * 86400.0),
            ("TRELLIS_SESSION_IDLE", "2h", "session_idle", 7200.0),
            ("TRELLIS_LOG_FORMAT", "json", "log_format", "json"),
            ("TRELLIS_LOG_LEVEL", "debug", "log_level", "debug"),
            ("TRELLIS_METRICS_PUBLIC", "yes", "metrics_public", True),
            ("TRELLIS_METRICS_PUBLIC", "OFF", "metrics_public", False),
            ("TRELLIS_INSECURE_NO_AUTH", "1", "insecure_no_auth", True),
            ("TRELLIS_QUEUES", "emails, reports", "queues", ("emails", "reports")),
            (
                "TRELLIS_ALLOWED_HOSTS",
                "a.example, .b.example",
                "allowed_host",
                ["a.example", ".b.example"],
            ),
            ("TRELLIS_API_TOKEN", "s3cret", "token", "s3cret"),
            ("TRELLIS_STORE", "memory://", "store", "memory://"),
        ],
    )
    def test_each_kind(
        self, variable: str, value: str, dest: str, expected: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whole numbers, seconds, durations, choices, on/off and lists."""
        monkeypatch.setenv(variable, value)
        assert getattr(parse("serve"), dest) == expected

    @pytest.mark.parametrize("command", ["worker", "migrate"])
    def test_other_node_commands(self, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """worker and migrate read theirs too."""
        monkeypatch.setenv("TRELLIS_STORE", "postgresql:///trellis")
        assert parse(command).store == "postgresql:///trellis"

    def test_worker_reads_runtime_options(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The node options shared by serve and worker are read by both."""
        monkeypatch.setenv("TRELLIS_WORKERS", "5")
        monkeypatch.setenv("TRELLIS_PREFETCH", "4")
        args = parse("worker")
        assert (args.workers, args.prefetch) == (5, 4)

    def test_option_wins_over_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The command line overrides the environment, which overrides the default."""
        monkeypatch.setenv("TRELLIS_WORKERS", "5")
        monkeypatch.setenv("TRELLIS_LOG_FORMAT", "json")
        args = parse("serve", "--workers", "3")
        assert (args.workers, args.log_format) == (3, "json")
        assert parse("serve").workers == 5

    def test_repeated_option_adds_to_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--allowed-host adds to TRELLIS_ALLOWED_HOSTS, as it always has."""
        monkeypatch.setenv("TRELLIS_ALLOWED_HOSTS", "a.example")
        assert parse("serve", "--allowed-host", "b.example").allowed_host == [
            "a.example",
            "b.example",
        ]

    def test_empty_is_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty variable leaves the default."""
        monkeypatch.setenv("TRELLIS_WORKERS", "")
        assert parse("serve").workers == 8

    def test_client_commands_ignore_node_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad node variable does not get in the way of `trellis tasks list`."""
        monkeypatch.setenv("TRELLIS_WORKERS", "five")
        assert parse("tasks", "list").command == "tasks"

    @pytest.mark.parametrize(
        ("variable", "value", "rule"),
        [
            ("TRELLIS_WORKERS", "five", "'five' is not a whole number"),
            ("TRELLIS_WORKERS", "-2", "-2 is negative"),
            ("TRELLIS_LEASE", "soon", "is not a number of seconds"),
            ("TRELLIS_RETAIN_DEAD", "forever", "is not a duration like 3600, 12h or 7d"),
            ("TRELLIS_LOG_FORMAT", "xml", "'xml' is not one of json, console"),
            ("TRELLIS_METRICS_PUBLIC", "maybe", "use 1, true, yes, on to turn --metrics-public on"),
            ("TRELLIS_QUEUES", ",", "give at least one queue name"),
        ],
    )
    def test_bad_value_exits_2_naming_the_variable(
        self,
        variable: str,
        value: str,
        rule: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A value the option would refuse is a usage error that says which variable."""
        monkeypatch.setenv(variable, value)
        with pytest.raises(SystemExit) as exit_:
            parse("serve")
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"environment variable {variable}={value!r}" in err
        assert rule in err

    def test_bad_value_fails_even_beside_its_option(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A set variable must be valid, whatever the command line says."""
        monkeypatch.setenv("TRELLIS_WORKERS", "five")
        with pytest.raises(SystemExit):
            parse("serve", "--workers", "3")


class TestRuntimeOptions:
    """The runtime's timing and claiming options reach its RuntimeConfig, which checks them."""

    @pytest.fixture
    def planned(self, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        """The plan a node would run, instead of running it."""
        import trio

        plans: list[Any] = []
        monkeypatch.setattr(trio, "run", lambda _fn, plan: plans.append(plan) or 0)
        monkeypatch.setattr(cli, "_tune_gc", lambda: None)
        monkeypatch.setattr("trellis_actors.logging.configure_logging", lambda *a, **k: None)
        return plans

    def test_options_reach_the_config(
        self, planned: list[Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each option sets its RuntimeConfig field, from the command line or the env."""
        monkeypatch.setenv("TRELLIS_PREFETCH", "4")
        monkeypatch.setenv("TRELLIS_LOG_TRANSITIONS", "true")
        code = cli.main(
            [
                "worker",
                "--store",
                "sqlite:///:memory:",
                "--lease",
                "12",
                "--poll-interval",
                "0.5",
                "--claim-ahead",
                "3",
                "--janitor-interval",
                "2",
                "--worker-idle-timeout",
                "60",
                "--blocked-loop-warning",
                "0",
                "--node-name",
                "n1",
            ]
        )
        assert code == 0
        config = planned[0].runtime.config
        assert (config.lease, config.poll_interval, config.janitor_interval) == (12, 0.5, 2)
        assert (config.claim_ahead, config.prefetch) == (3, 4)
        assert config.worker_idle_timeout == 60
        assert config.blocked_loop_warning is None  # 0: off
        assert config.node == "n1"
        assert config.log_transitions is True

    def test_defaults_are_the_configs(self, planned: list[Any]) -> None:
        """Without the options, a node runs RuntimeConfig's defaults (watchdog off)."""
        from trellis_actors.runtime.config import RuntimeConfig

        assert cli.main(["serve", "--store", "memory://"]) == 0
        config, default = planned[0].runtime.config, RuntimeConfig()
        for name in ("lease", "poll_interval", "claim_ahead", "prefetch", "janitor_interval"):
            assert getattr(config, name) == getattr(default, name)
        assert config.worker_idle_timeout is None

    @pytest.mark.parametrize(
        ("argv", "env", "rule"),
        [
            (["--lease", "0"], {}, "lease must be > 0 seconds"),
            ([], {"TRELLIS_POLL_INTERVAL": "0"}, "poll_interval must be > 0 seconds"),
            ([], {"TRELLIS_JANITOR_INTERVAL": "0"}, "janitor_interval must be > 0 seconds"),
            (["--prefetch", "0"], {}, "prefetch and claim_ahead must be >= 1"),
            ([], {"TRELLIS_CLAIM_AHEAD": "0"}, "prefetch and claim_ahead must be >= 1"),
        ],
    )
    def test_refused_values_exit_2(
        self,
        argv: list[str],
        env: dict[str, str],
        rule: str,
        planned: list[Any],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A value RuntimeConfig refuses is a usage error stating its rule; nothing runs."""
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["serve", "--store", "memory://", *argv]) == 2
        assert rule in capsys.readouterr().err
        assert planned == []
