"""What every UI handler reaches: the runtime facade, the guard, the throughput ring, the
login sessions and the live streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from quart import current_app

from ..runtime.runtime import Runtime
from ._live import Live
from ._security import Guard
from ._sessions import Sessions
from ._throughput import Throughput

_KEY = "trellis_ui"


@dataclass(frozen=True, slots=True)
class UiState:
    runtime: Runtime
    guard: Guard
    throughput: Throughput
    sessions: Sessions
    live: Live


def ui() -> UiState:
    """The UI state of the app handling the current request."""
    return cast(UiState, current_app.extensions[_KEY])


def attach(extensions: dict[str, object], state: UiState) -> None:
    if _KEY in extensions:
        raise ValueError("the web UI is already registered on this app")
    extensions[_KEY] = state


def close_live(extensions: dict[str, object]) -> None:
    """The server is stopping: end the UI's event streams, if it has the UI."""
    state = extensions.get(_KEY)
    if isinstance(state, UiState):
        state.live.close()
