"""``trellis_actors.client``'s pure parts: its exports, the typed error of each refusal,
when a request is sent again, and the URL it takes."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import trellis_actors.client
from trellis_actors import TaskNotFound, ValidationError
from trellis_actors.client import _http
from trellis_actors.client._calls import Request
from trellis_actors.errors import ClientError, Conflict, ScheduleNotFound, Unauthorized, Unavailable


class TestExports:
    def test_names(self) -> None:
        """The module exports the two clients, each once."""
        assert trellis_actors.client.__all__ == ["AsyncClient", "Client"]

    def test_importing_trellis_does_not_import_httpx(self) -> None:
        """``import trellis_actors`` stays light: httpx loads with the client only."""
        code = "import sys, trellis_actors; print('httpx' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip() == "False", out.stderr


class TestRefused:
    @pytest.mark.parametrize(
        ("status", "path", "error"),
        [
            (400, "/tasks", ValidationError),
            (413, "/tasks", ValidationError),
            (415, "/tasks", ValidationError),
            (422, "/schedules", ValidationError),
            (404, "/tasks/x", TaskNotFound),
            (404, "/schedules/x", ScheduleNotFound),
            (404, "/tasks", ClientError),
            (401, "/tasks", Unauthorized),
            (403, "/tasks", Unauthorized),
            (409, "/tasks/x", Conflict),
            (502, "/tasks", Unavailable),
            (503, "/tasks", Unavailable),
            (504, "/tasks", Unavailable),
            (500, "/tasks", ClientError),
            (405, "/tasks", ClientError),
        ],
    )
    def test_status(self, status: int, path: str, error: type[Exception]) -> None:
        """Each status becomes its typed error, with the server's message."""
        body = {"error": {"code": "x", "message": "the rule"}}
        refusal = _http.refused(status, body, Request("GET", path))
        assert type(refusal) is error
        assert "the rule" in str(refusal)

    def test_field(self) -> None:
        """A 400's field comes from the error body."""
        body = {"error": {"code": "validation_error", "message": "m", "field": "[2].priority"}}
        refusal = _http.refused(400, body, Request("POST", "/tasks"))
        assert isinstance(refusal, ValidationError) and refusal.field == "[2].priority"

    def test_not_json(self) -> None:
        """An error without the JSON shape still says the status and the request."""
        refusal = _http.refused(500, None, Request("GET", "/tasks"))
        assert str(refusal) == "HTTP 500 for GET /tasks"


class TestResend:
    def test_when(self) -> None:
        """A connection never made is always tried again; a dropped one only for requests
        that may arrive twice; never past three retries."""
        request = httpx.Request("GET", "http://x")
        refused = httpx.ConnectError("refused", request=request)
        dropped = httpx.RemoteProtocolError("dropped", request=request)
        safe, once = Request("GET", "/tasks"), Request("POST", "/x", retry="connect")
        assert _http.may_resend(once, refused, 1)
        assert _http.may_resend(safe, dropped, 3)
        assert not _http.may_resend(once, dropped, 1)
        assert not _http.may_resend(safe, dropped, 4)
        assert not _http.may_resend(safe, httpx.ReadTimeout("slow", request=request), 1)

    def test_backoff(self) -> None:
        """Short waits, growing."""
        waits = [_http.backoff(attempt) for attempt in (1, 2, 3)]
        assert waits == sorted(waits) and waits[-1] < 1

    def test_long_poll_read_timeout(self) -> None:
        """A long poll's read timeout exceeds the time the server may hold it."""
        timeout = _http.timeout_of(Request("GET", "/tasks/x/wait", hold=30), 10)
        assert timeout.read == 40 and timeout.connect == 10


class TestUrl:
    def test_good(self) -> None:
        assert str(_http.check_url("https://trellis.example/api")) == "https://trellis.example/api"

    @pytest.mark.parametrize("url", ["ftp://h", "h:80", "http://", "http://[::zz]"])
    def test_bad(self, url: str) -> None:
        """Anything but http(s) with a host: ValidationError naming url."""
        with pytest.raises(ValidationError, match="url must be an http") as caught:
            _http.check_url(url)
        assert caught.value.field == "url"
