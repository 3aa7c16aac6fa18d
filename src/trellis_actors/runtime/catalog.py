"""The registry actor extended with the catalog of task types and their policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from ..actors import (
    ListActors,
    Lookup,
    Register,
    Registry,
    RegistryMsg,
    Request,
    Subscribe,
    Unregister,
)
from ..app import App, TaskType


@dataclass(frozen=True, slots=True)
class TaskTypes(Request[tuple[TaskType, ...]]):
    """Reply: every registered task type."""


CatalogMsg = RegistryMsg | TaskTypes


class CatalogRegistry(Registry):
    """The directory of live actors, plus the (immutable) catalog of task types."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self._catalog = tuple(app)

    async def handle(self, msg: CatalogMsg) -> None:
        match msg:
            case TaskTypes():
                msg.reply.send(self._catalog)
            case Register() | Unregister() | Lookup() | ListActors() | Subscribe():
                await super().handle(msg)
            case _:
                assert_never(msg)
