"""Workflows survive SIGKILL: a node killed while a step runs, while the workflow sleeps,
while it waits for a signal and while a gather's steps run is started again on the same
store, and the workflow finishes with every step run to completion exactly once. And
two PostgreSQL nodes share 200 workflows, each step completed once.

A step killed mid-run starts again (delivery is at least once); the marks that count
completions are written only when a step ends, which a held step never does before its
node is killed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.kit import Server, clean_env
from tests.e2e.workflow_app import MARKS, completions
from tests.e2e.workflow_kit import until, waits_for
from tests.integration.conftest import pg_template, pg_url, postgres_server  # noqa: F401

from trellis_actors import TaskStatus
from trellis_actors.client import Client
from trellis_actors.workflows import EntryKind, EntryOutcome

#: Short leases and a busy janitor: a killed node's claims are taken back within ~1 s.
FAST = ("--lease", "1", "--janitor-interval", "0.2", "--heartbeat", "0.2")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


class Nodes:
    """``trellis serve`` processes on one store, killed and started again; stopped at the
    end of the test."""

    def __init__(self, store: str, marks: Path) -> None:
        self.store = store
        self.env = clean_env(**{MARKS: str(marks)})
        self.running: list[Server] = []

    def start(self, *args: str, command: tuple[str, ...] | None = None) -> Server:
        extra = {} if command is None else {"command": command, "ready": r"^probes on (\S+)"}
        server = Server(
            "--app",
            "tests.e2e.workflow_app:app",
            "--store",
            self.store,
            *FAST,
            *args,
            env=self.env,
            **extra,  # type: ignore[arg-type]  # command and ready are str tuples
        )
        self.running.append(server)
        return server

    def kill(self, server: Server) -> None:
        server.process.kill()
        server.process.wait(timeout=30)
        self.running.remove(server)

    def restart(self, server: Server) -> Server:
        """SIGKILL ``server``, then a new node on the same store."""
        self.kill(server)
        return self.start()

    def stop(self) -> None:
        for server in self.running:
            assert server.stop() == 0, "".join(server.stderr)


@pytest.fixture
def nodes(store: str, marks: Path) -> Iterator[Nodes]:
    started = Nodes(store, marks)
    try:
        yield started
    finally:
        started.stop()


def held(server: Server, *names: str) -> None:
    """Until the server's log says that each step of ``names`` is held running."""
    waiting = set(names)
    while waiting:
        line = server.wait_for_log("holding step")
        waiting.discard(line.split("holding step", 1)[1].strip())


def test_killed_at_every_kind_of_wait(nodes: Nodes, marks: Path) -> None:
    """Killed in a step, in a sleep, in a signal wait and in a gather: it finishes, and
    each step ran to completion once."""
    server = nodes.start()
    plan = {"key": "j", "hold": ["a", "b", "c"], "sleep": 3.0}
    with Client(server.url) as client:
        flow = client.submit("journey", plan)
    held(server, "j-a")
    server = nodes.restart(server)  # while step a runs

    until(server.url, flow.id, waits_for(EntryKind.SLEEP))
    server = nodes.restart(server)  # while it sleeps

    until(server.url, flow.id, waits_for(EntryKind.SIGNAL))
    server = nodes.restart(server)  # while it waits for a signal
    with Client(server.url) as client:
        client.signal(flow.id, "go", "now")
    held(server, "j-b", "j-c")
    server = nodes.restart(server)  # while the gather's two steps run

    with Client(server.url) as client:
        done = client.wait(flow.id, timeout=60)
        state = client.workflow(flow.id)
    assert done.status is TaskStatus.COMPLETED, done.error
    assert done.result == ["j-a", "now", "j-b", "j-c"]
    assert {name: completions(marks, f"j-{name}") for name in "abc"} == {"a": 1, "b": 1, "c": 1}
    assert [(e.kind, e.outcome) for e in state.history] == [
        (EntryKind.STEP, EntryOutcome.COMPLETED),
        (EntryKind.SLEEP, EntryOutcome.ELAPSED),
        (EntryKind.SIGNAL, EntryOutcome.RECEIVED),
        (EntryKind.STEP, EntryOutcome.COMPLETED),
        (EntryKind.STEP, EntryOutcome.COMPLETED),
    ]
    assert len(state.steps) == 3  # one task per step, however often it started


@pytest.mark.postgres
def test_two_nodes_share_200_workflows(pg_url: str, marks: Path) -> None:  # noqa: F811
    """A serving node and a worker node run 200 workflows of four steps each: all
    complete, and each step completed once."""
    nodes = Nodes(pg_url, marks)
    try:
        server = nodes.start("--workers", "8")
        nodes.start("--workers", "8", "--bind", "127.0.0.1:0", command=("worker",))
        with Client(server.url) as client:
            flows = client.submit_many([{"type": "fan", "payload": f"w{i}"} for i in range(200)])
            done = [client.wait(flow.id, timeout=120) for flow in flows]
            ran_on = {step.node for flow in flows for step in client.workflow(flow.id).steps}
    finally:
        nodes.stop()
    assert {flow.status for flow in done} == {TaskStatus.COMPLETED}
    assert all(flow.result == [f"w{i}-{n}" for n in range(4)] for i, flow in enumerate(done))
    counts = {completions(marks, f"w{i}-{n}") for i in range(200) for n in range(4)}
    assert counts == {1}
    assert len(ran_on) == 2  # both nodes ran steps
