"""The limits' pure parts: effective timeouts, max_duration at registration, include,
and the CLI's defaults."""

from __future__ import annotations

from typing import Any

import pytest

from trellis_actors import App, ConfigurationError, TaskContext, ValidationError, cli, rules
from trellis_actors.http import _state, server
from trellis_actors.http.node import server_config
from trellis_actors.runtime.worker import effective_timeout
from trellis_actors.stores.base import fitting


async def handler(ctx: TaskContext, payload: Any) -> None:
    pass


class TestEffectiveTimeout:
    @pytest.mark.parametrize(
        ("task", "task_type", "max_duration", "expected"),
        [
            (None, None, None, None),
            (5.0, None, None, 5.0),
            (None, 7.0, None, 7.0),
            (5.0, 7.0, None, 5.0),  # the task's own wins over its type's
            (9.0, 7.0, None, 9.0),
            (None, None, 3.0, 3.0),
            (5.0, None, 3.0, 3.0),
            (None, 7.0, 3.0, 3.0),
            (2.0, 7.0, 3.0, 2.0),
        ],
    )
    def test_the_task_or_its_type_capped_by_max_duration(
        self,
        task: float | None,
        task_type: float | None,
        max_duration: float | None,
        expected: float | None,
    ) -> None:
        assert effective_timeout(task, task_type, max_duration) == expected


class TestMaxDurationOption:
    def test_it_is_kept_and_shown(self) -> None:
        app = App(builtins=False)
        app.task(name="job", max_duration=60)(handler)
        assert app.get("job").max_duration == 60
        assert app.get("job").to_dict()["max_duration"] == 60

    @pytest.mark.parametrize("bad", [0, -1, float("nan"), 10 * 365 * 86400.0])
    def test_out_of_range_is_refused(self, bad: float) -> None:
        with pytest.raises(ConfigurationError, match="max_duration must be > 0 seconds"):
            App(builtins=False).task(name="job", max_duration=bad)(handler)

    def test_a_type_timeout_above_it_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match=r"timeout \(20s\) must not exceed"):
            App(builtins=False).task(name="job", timeout=20, max_duration=10)(handler)

    def test_builtin_sleep_is_finite(self) -> None:
        assert App().get("sleep").max_duration is not None


class TestInclude:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, set()),
            ("", set()),
            ("payload", {"payload"}),
            ("payload,result", {"payload", "result"}),
            (["result"], {"result"}),
            ((), set()),
        ],
    )
    def test_names_payload_and_result(self, value: Any, expected: set[str]) -> None:
        assert rules.check_include(value) == expected

    @pytest.mark.parametrize("value", ["error", "payload,x", [1], 5])
    def test_anything_else_is_refused(self, value: Any) -> None:
        with pytest.raises(ValidationError, match="include may name payload and result"):
            rules.check_include(value)


class TestFitting:
    @pytest.mark.parametrize(
        ("sizes", "most", "expected"),
        [
            ([], 10, 0),
            ([3, 3, 3], None, 3),
            ([3, 3, 3], 9, 3),
            ([3, 3, 3], 8, 2),
            ([30, 1], 8, 1),  # one at least
        ],
    )
    def test_a_prefix_within_the_bytes(
        self, sizes: list[int], most: int | None, expected: int
    ) -> None:
        assert fitting(sizes, most) == expected


def test_cli_defaults_match_the_servers() -> None:
    """The CLI keeps its own copies of the defaults (to start light): they agree."""
    assert cli.DEFAULT_MAX_CONNECTIONS == server.DEFAULT_MAX_CONNECTIONS
    assert cli.DEFAULT_MAX_EVENT_STREAMS == _state.DEFAULT_MAX_EVENT_STREAMS
    assert cli.MAX_PAGE_BYTES == rules.MAX_PAGE_BYTES


class TestServeOptions:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("CONNECTIONS", "EVENT_STREAMS", "PAGE_BYTES"):
            monkeypatch.delenv(f"TRELLIS_MAX_{name}", raising=False)
        config = server_config(cli.build_parser().parse_args(["serve"]))
        assert (config.max_connections, config.max_event_streams, config.max_page_bytes) == (
            1000,
            100,
            8 * 1024 * 1024,
        )

    def test_flags_and_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRELLIS_MAX_EVENT_STREAMS", "7")
        monkeypatch.setenv("TRELLIS_MAX_PAGE_BYTES", "4096")
        args = cli.build_parser().parse_args(["serve", "--max-connections", "12"])
        config = server_config(args)
        assert (config.max_connections, config.max_event_streams, config.max_page_bytes) == (
            12,
            7,
            4096,
        )

    def test_zero_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_connections must be at least 1"):
            server.ServerConfig(max_connections=0)
