"""The examples of docs/workflows.md run as written: the onboarding workflow, the
compensating one, and the virtual-time test that drives both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_examples_run() -> None:
    """Every block that is a module runs, in order, in one namespace; the one snippet of
    calls (signals, needing a runtime and a client) at least compiles as a function."""
    namespace: dict[str, Any] = {"__name__": "workflows_doc"}
    snippets = []
    for block in blocks():
        try:
            code = compile(block, str(DOC), "exec")
        except SyntaxError:  # top-level await: a snippet
            snippets.append(block)
            continue
        exec(code, namespace)
    assert [s.splitlines()[0] for s in snippets] == [
        'await rt.signal(workflow_id, "approved", {"by": "ops"})   # embedded'
    ]
    body = "".join(f"    {line}\n" for line in snippets[0].splitlines())
    compile(f"async def snippet(rt, client, workflow_id):\n{body}", str(DOC), "exec")
    assert {"onboard", "checkout", "main"} <= namespace.keys()
