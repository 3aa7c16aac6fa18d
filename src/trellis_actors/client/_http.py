"""What both clients share about HTTP: the server's URL, retries after a lost connection,
and the typed error for each refusal."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .. import __version__, rules
from ..errors import (
    ClientError,
    Conflict,
    ScheduleNotFound,
    TaskNotFound,
    TrellisError,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from ..workflows import NotAWorkflow, WorkflowEnded
from ._calls import Request

#: The error ``code`` of a 409 that is the same refusal as an embedded call's.
_CONFLICTS: dict[str, type[TrellisError]] = {
    "workflow_ended": WorkflowEnded,
    "not_a_workflow": NotAWorkflow,
}

#: How many times a request is sent again after a lost connection.
RETRIES = 3

#: Lost connections after which the server may or may not have seen the request.
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
#: Connections never made: the server surely did not see the request.
_NOT_MADE = (httpx.ConnectError, httpx.ConnectTimeout)


def backoff(attempt: int) -> float:
    """Seconds to wait before sending a request again for the ``attempt``-th time (1, 2, 3):
    quick, since a dropped connection is usually fixed by a new one."""
    return (0.05, 0.2, 0.8)[min(attempt, RETRIES) - 1]


def check_url(url: str) -> httpx.URL:
    """The server's base URL; ValidationError(field="url") unless it is http(s)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValidationError(
            f"url must be an http:// or https:// URL: {exc}", field="url"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError(
            f"url must be an http:// or https:// URL with a host, such as "
            f"http://127.0.0.1:8080, not {url!r}",
            field="url",
        )
    return parsed


def headers(token: str | None) -> dict[str, str]:
    sent = {"Accept": "application/json", "User-Agent": f"trellis-client/{__version__}"}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return sent


def build(
    http: httpx.Client | httpx.AsyncClient, request: Request, timeout: float
) -> httpx.Request:
    """``request`` as httpx sends it. A body or a query parameter that cannot be sent (not
    JSON, NaN, text with a lone surrogate, nested past the encoder's depth) is a
    ValidationError naming it, before anything is sent."""
    headers = {}
    content = None
    if request.has_body:
        content = _encoded(request.body)
        headers["Content-Type"] = "application/json"
    for name, value in (request.params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        if not all(_sendable(str(one)) for one in values):
            raise ValidationError(f"{name} cannot be sent: it is not valid text", field=name)
    return http.build_request(
        request.method,
        request.path,
        params=request.params,
        content=content,
        headers=headers,
        timeout=timeout_of(request, timeout),
    )


def _encoded(body: Any) -> bytes:
    try:
        return _json(body)
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        # The input rules say which field, and what in it, JSON cannot carry.
        fields = body.items() if isinstance(body, dict) else [("body", body)]
        for name, value in fields:
            rules.check_json(value, name)
        raise ValidationError(f"the request body cannot be sent as JSON ({exc})") from None


def _json(value: Any) -> bytes:
    """The JSON text httpx would send for ``value``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def timeout_of(request: Request, timeout: float) -> httpx.Timeout:
    """``timeout`` for every phase; a long poll's read allows for the time it is held."""
    return httpx.Timeout(timeout, read=request.hold + timeout)


def may_resend(request: Request, error: httpx.TransportError, attempt: int) -> bool:
    """Whether a request whose connection was lost is sent again (``attempt`` tries made)."""
    if attempt > RETRIES:
        return False
    if isinstance(error, _NOT_MADE):
        return True
    return request.retry == "always" and isinstance(error, _DROPPED)


def unreachable(url: str, error: httpx.TransportError) -> TrellisError:
    """The error for a request that got no answer."""
    if isinstance(error, httpx.UnsupportedProtocol):
        return ValidationError(f"url {url!r} is not an http:// or https:// URL", field="url")
    if isinstance(error, httpx.TimeoutException):
        return Unavailable(f"the Trellis server at {url} did not answer in time")
    return Unavailable(
        f"cannot reach the Trellis server at {url} ({error or type(error).__name__}); "
        "is `trellis serve` running there?"
    )


def answer(response: httpx.Response, request: Request) -> Any:
    """The decoded JSON of a success (None for 204); raises the typed error of a refusal."""
    if response.status_code == 204:
        return None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success:
        if data is None:
            raise Unavailable(
                f"{response.url} answered with something other than JSON; is it a Trellis server?",
                status=response.status_code,
            )
        return data
    raise refused(response.status_code, data, request)


def refused(status: int, data: Any, request: Request) -> TrellisError:
    """The typed error for an error answer: ``{"error": {"code", "message", "field"?}}``."""
    error = data.get("error") if isinstance(data, dict) else None
    field = None
    if isinstance(error, dict):
        message = str(error.get("message") or f"HTTP {status}")
        field = error.get("field") if isinstance(error.get("field"), str) else None
    else:
        message = f"HTTP {status} for {request.method} {request.path}"
    if status in (400, 413, 415, 422):
        return ValidationError(message, field=field)
    if status == 409 and isinstance(error, dict) and error.get("code") in _CONFLICTS:
        return _CONFLICTS[error["code"]](message)
    if status == 404:
        if request.path.startswith(("/tasks/", "/workflows/")):
            return TaskNotFound(message)
        if request.path.startswith("/schedules/"):
            return ScheduleNotFound(message)
    if status in (401, 403):
        return Unauthorized(f"not authorised: {message}", status=status)
    if status == 409:
        return Conflict(message, status=status, field=field)
    if status in (502, 503, 504):
        return Unavailable(f"server unavailable: {message}", status=status)
    return ClientError(message, status=status, field=field)
