"""Snapshots of the supervision tree."""

from __future__ import annotations

import json
import math
import time

import pytest
import trio
import trio.testing
from tests.unit.actors.kit import Crash, Hold, Journal, named, probe, run_to_end, running

from trellis_actors import Backoff
from trellis_actors.actors import (
    Actor,
    ActorSnapshot,
    ChildSpec,
    Intensity,
    MailboxStatistics,
    Registry,
    Strategy,
    Supervisor,
)
from trellis_actors.errors import SupervisorEscalation

SLOW = Backoff(initial=10.0, maximum=10.0, jitter=0.0)


def tree(journal: Journal) -> Supervisor:
    inner = ChildSpec(
        "inner", lambda: Supervisor([probe(journal, "x")], strategy=Strategy.REST_FOR_ONE)
    )
    children = [ChildSpec("registry", Registry, mailbox_size=math.inf), probe(journal, "a"), inner]
    return named(Supervisor(children, strategy=Strategy.ONE_FOR_ALL, backoff=SLOW), "root")


class TestSnapshot:
    async def test_tree(self, autojump_clock: trio.testing.MockClock) -> None:
        """The snapshot nests children under their supervisors, with kinds and strategies."""
        supervisor = tree(Journal())
        async with running(supervisor):
            await trio.sleep(5)
            root = supervisor.snapshot()

        assert (root.name, root.kind, root.state, root.strategy) == (
            "root",
            "supervisor",
            "running",
            "one_for_all",
        )
        assert [(s.name, s.kind) for s in root.children] == [
            ("registry", "registry"),
            ("a", "probe"),
            ("inner", "supervisor"),
        ]
        inner = root.children[2]
        assert inner.strategy == "rest_for_one"
        assert [s.name for s in inner.children] == ["x"]
        assert [s.name for s in root.walk()] == ["root", "registry", "a", "inner", "x"]
        a = root.find("a")
        assert a is not None
        assert (a.state, a.restarts, a.last_error, a.last_error_at) == ("running", 0, None, None)
        assert (a.uptime, a.next_restart_in, a.strategy, a.children) == (5, None, None, ())
        assert a.mailbox == MailboxStatistics(0, 128, 0, 0, 0.0)
        assert root.find("nobody") is None

    async def test_backing_off(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child waiting to restart shows its error and the time left until the restart."""
        spec = probe(Journal(), "p")
        supervisor = Supervisor([spec], backoff=SLOW)
        async with running(supervisor):
            await spec.ref.tell(Crash("gone wrong"))
            await trio.testing.wait_all_tasks_blocked()
            crashed = supervisor.snapshot().find("p")
            await trio.sleep(4)
            later = supervisor.snapshot().find("p")

        assert crashed is not None and later is not None
        assert (crashed.state, crashed.restarts) == ("backing-off", 1)
        assert crashed.last_error == "RuntimeError('gone wrong')"
        assert crashed.last_error_at == pytest.approx(time.time(), abs=60)
        assert crashed.uptime is None
        assert crashed.next_restart_in == pytest.approx(10)
        assert later.next_restart_in == pytest.approx(6)

    async def test_stopping(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child asked to stop but still busy shows as stopping."""
        spec = probe(Journal(), "p", shutdown_timeout=3)
        supervisor = Supervisor([spec])
        async with running(supervisor):
            await spec.ref.tell(Hold(trio.Event()))
            supervisor.request_stop()
            await trio.testing.wait_all_tasks_blocked()

            assert supervisor.snapshot().find("p").state == "stopping"  # type: ignore[union-attr]

    async def test_failed(self, autojump_clock: trio.testing.MockClock) -> None:
        """The child that made its supervisor give up shows as failed."""
        spec = probe(Journal(), "p")
        spec.ref.tell_nowait(Crash())
        supervisor = Supervisor([spec, probe(Journal(), "q")], intensity=Intensity(0, 1))

        with pytest.raises(SupervisorEscalation):
            await run_to_end(supervisor)
        assert [s.state for s in supervisor.snapshot().children] == ["failed", "stopped"]
        assert supervisor.snapshot().state == "stopped"

    async def test_to_dict_is_json(self, autojump_clock: trio.testing.MockClock) -> None:
        """to_dict() gives plain JSON, an unbounded mailbox's capacity as null."""
        journal = Journal()
        supervisor = tree(journal)
        async with running(supervisor):
            data = json.loads(json.dumps(supervisor.snapshot().to_dict()))

        assert data["name"] == "root"
        assert data["mailbox"]["capacity"] == 128
        registry, a, inner = data["children"]
        assert registry["mailbox"]["capacity"] is None
        assert a["mailbox"] == {
            "length": 0,
            "capacity": 128,
            "sent": 0,
            "handled": 0,
            "blocked_seconds": 0.0,
        }
        assert inner["children"][0]["name"] == "x"
        assert set(a) == {f for f in ActorSnapshot.__dataclass_fields__}
        assert a["details"] is None

    async def test_details(self, autojump_clock: trio.testing.MockClock) -> None:
        """An actor's details() shows in its snapshot while it runs, and in to_dict()."""
        spec = ChildSpec("counted", Counted)
        supervisor = Supervisor([spec])
        async with running(supervisor):
            snap = supervisor.snapshot().find("counted")
            data = json.loads(json.dumps(supervisor.snapshot().to_dict()))
        stopped = supervisor.snapshot().find("counted")

        assert snap is not None and stopped is not None
        assert (snap.kind, snap.details) == ("counted", {"busy": 1})
        assert data["children"][0]["details"] == {"busy": 1}
        assert stopped.details is None


class Counted(Actor[object]):
    """An actor that adds a detail of its own."""

    kind = "counted"

    def details(self) -> dict[str, int]:
        return {"busy": 1}

    async def handle(self, msg: object) -> None:
        pass
