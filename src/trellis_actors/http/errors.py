"""Every error the API sends has one shape: ``{"error": {"code", "message", "field"?}}``.

Anything a client can send is answered with a 4xx; a 5xx means the server is at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pydantic
import structlog
from quart import Quart, Response, g, has_request_context, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import (
    ActorStopped,
    AskTimeout,
    ConfigurationError,
    InvalidTransition,
    ScheduleNotFound,
    StoreUnavailable,
    TaskNotFound,
    TrellisError,
    UnknownTaskType,
    ValidationError,
)
from ..ui._blueprint import not_found_page
from ..workflows import NotAWorkflow, WorkflowEnded
from ._encode import json_response

log = structlog.get_logger("trellis.http")

#: The ``code`` of an error answered by Quart itself (routing, body size, ...).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a handler to answer with an error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(message)
        self.scope = scope  # the scope a refused request needed (401, 403)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.scope is not None:
            body["scope"] = self.scope
        if has_request_context() and (rid := getattr(g, "request_id", None)) is not None:
            body["request_id"] = rid  # the request's log lines carry it too
        return json_response({"error": body}, self.status, self.headers)


def from_trellis(error: TrellisError) -> ApiError:
    """The API error for a Trellis error raised through the runtime facade."""
    message = str(error)
    match error:
        case UnknownTaskType():
            return ApiError(400, "unknown_task_type", message, field="type")
        case ValidationError():
            return ApiError(400, "validation_error", message, field=error.field)
        case TaskNotFound() | ScheduleNotFound():
            return ApiError(404, "not_found", message)
        case InvalidTransition():
            return ApiError(409, "invalid_transition", message)
        case WorkflowEnded():
            return ApiError(409, "workflow_ended", message)
        case NotAWorkflow():
            return ApiError(409, "not_a_workflow", message)
        case StoreUnavailable():
            retry = str(max(1, math.ceil(error.retry_after)))
            return ApiError(
                503,
                "store_unavailable",
                f"the store is unavailable (it cannot be reached or written now): nothing "
                f"was done; retry in {retry}s",
                headers={"Retry-After": retry},
            )
        case AskTimeout() | ActorStopped() | ConfigurationError():
            return ApiError(
                503,
                "unavailable",
                "the server is busy, starting or stopping; retry in a second",
                headers={"Retry-After": "1"},
            )
        case _:  # the server's own fault: what it was stays in the log, not the answer
            return ApiError(500, "internal_error", "internal server error; see the server log")


def from_pydantic(error: pydantic.ValidationError, *, index: int | None = None) -> ApiError:
    """The API error for the first problem pydantic found, naming its field."""
    first = error.errors(include_url=False)[0]
    loc = [*([] if index is None else [index]), *first["loc"]]
    field = _field(loc)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = f"unknown field {str(loc[-1])!r}"
    return ApiError(
        400,
        "validation_error",
        f"{field}: {message}" if field else message,
        field=field,
    )


def _field(loc: list[Any]) -> str | None:
    """``[3, "priority"]`` → ``"[3].priority"``; ``["priority"]`` → ``"priority"``.

    A problem inside a payload names ``payload`` (pydantic's path within it names union
    members, not keys)."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        if part == "payload":
            break
    return text or None


def install(app: Quart) -> None:
    """Answer every error, Quart's own included, with the JSON error shape."""

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return error.response()

    @app.errorhandler(TrellisError)
    async def trellis_error(error: TrellisError) -> Response:
        answer = from_trellis(error)
        if isinstance(error, AskTimeout | ActorStopped | ConfigurationError):
            log.warning("request unavailable", error=str(error))
        elif answer.status >= 500 and not isinstance(error, StoreUnavailable):
            log.error("request failed", error=repr(error))  # an outage is logged once
        return answer.response()

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        message = error.description or error.name
        if status == 404 and request.path.startswith("/ui/") and "trellis_ui" in app.blueprints:
            return await not_found_page()  # a person's mistyped page: the UI's own 404
        if status == 404:
            message = "no such endpoint; see /openapi.json for the API"
        elif status == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        code = HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        return ApiError(status, code, message, headers=headers).response()

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unhandled error in a request handler")
        message = "internal server error; see the server log"
        return ApiError(500, "internal_error", message).response()
