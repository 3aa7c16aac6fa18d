"""``--threads`` and ``--processes`` on ``serve`` and ``worker``: checked before anything runs."""

from __future__ import annotations

import pytest

from trellis_actors.cli import main


@pytest.mark.parametrize("option", ["--threads", "--processes"])
@pytest.mark.parametrize("value", ["-1", "many"])
def test_not_a_count(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A negative or non-number count is a usage error (exit 2) naming the option."""
    with pytest.raises(SystemExit) as exit_:
        main(["serve", option, value])
    assert exit_.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("option", ["threads", "processes"])
def test_zero(option: str, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    """Zero threads or processes could run nothing: exit 2, saying the rule."""
    code = main(["serve", f"--{option}", "0", "--store", "memory://"])
    assert code == 2
    assert f"{option} must be >= 1" in capsys.readouterr().err
