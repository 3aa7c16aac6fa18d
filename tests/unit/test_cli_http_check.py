"""``--enable-http-check`` (and ``TRELLIS_ENABLE_HTTP_CHECK``) is the only way the CLI adds
``http_check``."""

from __future__ import annotations

import pytest

import trellis_actors as ta
from trellis_actors.cli import build_parser, node_app


class TestEnableHttpCheck:
    """The node commands add http_check only when asked."""

    @pytest.mark.parametrize("command", ["serve", "worker"])
    def test_off_by_default(self, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the option the node's App has echo and sleep only."""
        monkeypatch.delenv("TRELLIS_ENABLE_HTTP_CHECK", raising=False)
        app = node_app(build_parser().parse_args([command]))
        assert sorted(t.name for t in app) == ["echo", "sleep"]

    @pytest.mark.parametrize("command", ["serve", "worker"])
    def test_option_registers_it(self, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """--enable-http-check adds http_check under the default policy."""
        monkeypatch.delenv("TRELLIS_ENABLE_HTTP_CHECK", raising=False)
        app = node_app(build_parser().parse_args([command, "--enable-http-check"]))
        assert "http_check" in app
        assert app.http_check == ta.HttpCheckPolicy()

    @pytest.mark.parametrize(("value", "enabled"), [("1", True), ("true", True), ("0", False)])
    def test_environment(self, value: str, enabled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        """TRELLIS_ENABLE_HTTP_CHECK=1 (or true, yes, on) does what the option does."""
        monkeypatch.setenv("TRELLIS_ENABLE_HTTP_CHECK", value)
        app = node_app(build_parser().parse_args(["serve"]))
        assert ("http_check" in app) is enabled

    def test_app_with_its_own_policy_is_kept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An --app that enabled http_check keeps its policy; the option adds nothing."""
        import sys
        import types

        policy = ta.HttpCheckPolicy(allow=["10.0.0.0/8"])
        module = types.ModuleType("http_check_cli_app")
        module.app = ta.App(http_check=policy)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "http_check_cli_app", module)
        args = build_parser().parse_args(
            ["serve", "--app", "http_check_cli_app:app", "--enable-http-check"]
        )
        assert node_app(args).http_check is policy
