"""mypy checks what is submitted with a task handle: the payload type, the option names
and types, and the result type of ``wait``. Runs mypy --strict over two example files:
one must pass, the other must fail on exactly its marked lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def mypy(path: Path) -> tuple[int, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--explicit-package-bases",
            str(path.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


def test_right_types_pass() -> None:
    code, output = mypy(HERE / "example_ok.py")
    assert code == 0, output


def test_wrong_types_fail_on_each_marked_line() -> None:
    path = HERE / "example_bad.py"
    lines = enumerate(path.read_text().splitlines(), 1)
    marked = {number for number, line in lines if "  # wrong:" in line}
    code, output = mypy(path)
    flagged = {int(n) for n in re.findall(rf"{path.name}:(\d+): error", output)}
    assert code == 1, output
    assert flagged == marked, output
