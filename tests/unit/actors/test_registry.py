"""The registry: a directory of live actors kept current by their supervisors."""

from __future__ import annotations

import math

import trio
import trio.testing
from tests.unit.actors.kit import STEADY, Crash, Exit, Journal, probe, running

from trellis_actors.actors import (
    ChildSpec,
    ListActors,
    Lookup,
    Register,
    Registry,
    RegistryChange,
    RemoveChild,
    RestartType,
    Subscribe,
    Supervisor,
    Unregister,
)


def registry_spec() -> ChildSpec:
    return ChildSpec("registry", Registry, mailbox_size=math.inf)


async def subscribe(registry: ChildSpec) -> trio.MemoryReceiveChannel[RegistryChange]:
    send, receive = trio.open_memory_channel[RegistryChange](math.inf)
    await registry.ref.ask(Subscribe(send))
    return receive


def drain(changes: trio.MemoryReceiveChannel[RegistryChange]) -> list[tuple[str, bool]]:
    seen = []
    while True:
        try:
            change = changes.receive_nowait()
        except trio.WouldBlock:
            return seen
        seen.append((change.name, change.up))


class TestRegistryActor:
    async def test_register_lookup_list(self) -> None:
        """Registered actors can be looked up by name and listed with their kinds."""
        reg, other = registry_spec(), probe(Journal(), "a")
        async with running(Supervisor([reg])):
            await reg.ref.tell(Register("a", "probe", other.ref))

            assert await reg.ref.ask(Lookup("a")) is other.ref
            assert await reg.ref.ask(Lookup("nobody")) is None
            assert await reg.ref.ask(ListActors()) == {"a": "probe"}

    async def test_unregister_needs_the_same_ref(self) -> None:
        """An unregister for a ref that was since replaced is ignored."""
        reg = registry_spec()
        old, new = probe(Journal(), "a"), probe(Journal(), "a")
        async with running(Supervisor([reg])):
            await reg.ref.tell(Register("a", "probe", new.ref))
            await reg.ref.tell(Unregister("a", old.ref))
            assert await reg.ref.ask(Lookup("a")) is new.ref

            await reg.ref.tell(Unregister("a", new.ref))
            assert await reg.ref.ask(Lookup("a")) is None

    async def test_full_subscriber_is_dropped(self) -> None:
        """A subscriber that does not keep up is dropped; the others still hear."""
        reg = registry_spec()
        slow_send, slow = trio.open_memory_channel[RegistryChange](1)
        async with running(Supervisor([reg])):
            await reg.ref.ask(Subscribe(slow_send))
            changes = await subscribe(reg)
            for name in ("a", "b", "c"):
                await reg.ref.tell(Register(name, "probe", reg.ref))
            await reg.ref.ask(ListActors())

            assert drain(slow) == [("a", True)]
            assert drain(changes) == [("a", True), ("b", True), ("c", True)]


class TestAutomaticRegistration:
    async def test_children_register_when_started(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Every started child is listed with its kind and found by name."""
        journal = Journal()
        reg, a = registry_spec(), probe(journal, "a")
        inner = ChildSpec("inner", lambda: Supervisor([probe(journal, "x")]))
        async with running(Supervisor([reg, a, inner], registry=reg.ref)):
            assert await reg.ref.ask(ListActors()) == {
                "registry": "registry",
                "a": "probe",
                "inner": "supervisor",
                "x": "probe",  # a child supervisor reports to its parent's registry
            }
            assert await reg.ref.ask(Lookup("a")) is a.ref

    async def test_crash_and_restart(self, autojump_clock: trio.testing.MockClock) -> None:
        """A crash unregisters the child and its restart registers it again."""
        journal = Journal()
        reg, a = registry_spec(), probe(journal, "a")
        async with running(Supervisor([reg, a], registry=reg.ref, backoff=STEADY)):
            changes = await subscribe(reg)
            await a.ref.tell(Crash())
            await trio.testing.wait_all_tasks_blocked()

            assert drain(changes) == [("a", False)]
            assert await reg.ref.ask(Lookup("a")) is None
            await journal.wait_for("start", "a", 2)
            assert await reg.ref.ask(Lookup("a")) is a.ref
            assert drain(changes) == [("a", True)]

    async def test_removal_and_exit(self, autojump_clock: trio.testing.MockClock) -> None:
        """Removed children and temporary children that ended are unregistered."""
        journal = Journal()
        reg = registry_spec()
        gone, temp = probe(journal, "gone"), probe(journal, "temp", restart=RestartType.TEMPORARY)
        supervisor = Supervisor([reg, gone, temp], registry=reg.ref)
        async with running(supervisor) as ref:
            changes = await subscribe(reg)
            await ref.ask(RemoveChild("gone"))
            await temp.ref.tell(Exit())
            await trio.testing.wait_all_tasks_blocked()

            assert sorted(drain(changes)) == [("gone", False), ("temp", False)]
            assert await reg.ref.ask(ListActors()) == {"registry": "registry"}

    async def test_child_supervisor_stop(self, autojump_clock: trio.testing.MockClock) -> None:
        """A child supervisor that stops unregisters its children, then itself."""
        journal = Journal()
        reg = registry_spec()
        inner = ChildSpec("inner", lambda: Supervisor([probe(journal, "x"), probe(journal, "y")]))
        async with running(Supervisor([reg, inner], registry=reg.ref)) as ref:
            changes = await subscribe(reg)
            await ref.ask(RemoveChild("inner"))
            await trio.testing.wait_all_tasks_blocked()

            assert drain(changes) == [("y", False), ("x", False), ("inner", False)]
