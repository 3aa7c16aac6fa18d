"""Following ``GET /events`` — without I/O: the request to (re)connect with, and the
server-sent events read line by line. :class:`~.Client` and :class:`~.AsyncClient` drive
it, each with its own HTTP client, and connect again after a dropped connection with
``Last-Event-ID``: no event is missed or read twice across the break."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .. import rules
from ..errors import Unavailable
from ..lifecycle import Recorded, Task, TaskEvent
from . import _http
from ._calls import Request

#: Dropped connections in a row (no event read between them) before following gives up.
RECONNECTS = 5

#: Transport errors after which following connects again.
DROPPED = (httpx.TransportError, httpx.StreamError)


class Following:
    """One ``follow()`` of a client: where it stands, and what its stream says."""

    def __init__(self, after: int | None, task_id: str | None, type: str | None) -> None:
        #: The id of the last event read (or ``after``); None until the server says where
        #: a stream "from now" began.
        self.last_id = None if after is None else rules.check_event_id(after)
        self._filters = {
            name: rules.check_text(value, name)
            for name, value in (("task_id", task_id), ("type", type))
            if value is not None
        }
        self._fields: dict[str, str] = {}
        self.failures = 0  # dropped connections since the last event read

    def request(self) -> tuple[Request, dict[str, str]]:
        """The request to connect (again) with, and its headers."""
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        return Request("GET", "/events", params=self._filters), headers

    def refused(self, response: httpx.Response, body: bytes) -> Exception:
        """The typed error for a stream the server would not open."""
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return _http.refused(response.status_code, data, self.request()[0])

    def dropped(self, url: str, error: Exception) -> float:
        """Seconds to wait before connecting again after ``error``; raises Unavailable
        once too many connections in a row were dropped without an event."""
        self.failures += 1
        if self.failures > RECONNECTS:
            raise Unavailable(
                f"lost the event stream of the Trellis server at {url} "
                f"{RECONNECTS} times in a row ({error or type(error).__name__})"
            ) from None
        return _http.backoff(self.failures)

    def line(self, line: str) -> Recorded | None:
        """Take one line of the stream: a recorded transition when it ends one."""
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                self._fields[name] = value.removeprefix(" ")
            return None
        fields, self._fields = self._fields, {}
        if "id" in fields and fields["id"].isdigit():
            self.last_id = int(fields["id"])  # where to resume, even with no event yet
        if fields.get("event") != "transition" or "data" not in fields:
            return None
        self.failures = 0
        data: dict[str, Any] = json.loads(fields["data"])
        return Recorded(
            self.last_id or 0,
            Task.from_dict(data["task"]),
            TaskEvent.from_dict(data["event"]),
        )
