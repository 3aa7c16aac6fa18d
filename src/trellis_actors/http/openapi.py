"""The OpenAPI document: quart-schema's, plus media types that are not JSON and error replies.

Three additions to what the route decorators say:

* a route marked with :func:`media_type` answers with that media type (``/metrics`` is text,
  ``/events`` is a server-sent event stream) instead of ``application/json``;
* a route marked with :func:`no_content` answers ``204`` without a body;
* every operation documents the shared error shape as its ``default`` response (a 401
  without a valid token, a 503 while the runtime is unavailable, ...);
* every operation names the scope it needs (``x-trellis-scope``) and, on a server with
  tokens, requires a bearer token with that scope (``security``; public ones need none).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel
from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule

from ..app import TaskType
from ._state import state_of
from .schemas import ErrorOut

F = TypeVar("F", bound=Callable[..., Any])

_REF = "#/components/schemas/{model}"
_MEDIA_ATTRIBUTE = "_trellis_media_type"
_NO_CONTENT_ATTRIBUTE = "_trellis_no_content"
#: Request fields that name a task type (by model): the document lists this server's types
#: as their values.
_TASK_TYPE_FIELDS = {
    "SubmitTask": "type",
    "ScheduleIn": "task_type",
    "ScheduleChanges": "task_type",
}


def media_type(
    media: tuple[str, ...], description: str, model: type[BaseModel] | None = None
) -> Callable[[F], F]:
    """Document that the 200 response is one of ``media``; ``model`` describes the items
    of a stream."""

    def decorate(func: F) -> F:
        setattr(func, _MEDIA_ATTRIBUTE, (media, description, model))
        return func

    return decorate


def no_content(description: str) -> Callable[[F], F]:
    """Document that the route answers ``204 No Content``."""

    def decorate(func: F) -> F:
        setattr(func, _NO_CONTENT_ATTRIBUTE, description)
        return func

    return decorate


class TrellisOpenAPI(OpenAPIProvider):
    """quart-schema's provider with non-JSON media types and a default error response."""

    def schema(self) -> dict[str, Any]:
        """The document, with this server's task types as the values a task type may take."""
        document = super().schema()
        app = state_of(self._app.extensions).app
        names = sorted(task_type.name for task_type in app)
        for schema in _request_models(document):
            field = _TASK_TYPE_FIELDS.get(schema.get("title", ""))
            if field is not None:
                schema["properties"][field]["enum"] = names
        _discriminate(document, sorted(app, key=lambda task_type: task_type.name))
        bearer = document.get("components", {}).get("securitySchemes", {}).get("bearer")
        if bearer is not None:
            bearer["description"] = (
                "An API token. Each operation lists the scope it needs: read, submit, "
                "operate or admin (admin implies every scope; operate implies read)."
            )
        return document

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        if rule.rule == "/" or rule.rule == "/ui" or rule.rule.startswith("/ui/"):
            return {}, {}  # the web UI's pages are not part of the API
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        error, error_components = self.build_response_object(ErrorOut, None)
        error["description"] = (
            "An error: 401 without a valid token (when the server has one), 403 with a token "
            "lacking the scope the operation needs (`scope` says which), 503 (with "
            "Retry-After) while the runtime or its store is unavailable, or another 4xx "
            "for a request the server refuses."
        )
        components.update(error_components)
        media = getattr(func, _MEDIA_ATTRIBUTE, None)
        no_body = getattr(func, _NO_CONTENT_ATTRIBUTE, None)
        auth = state_of(self._app.extensions).auth
        scope = auth.scope_of(func)
        for operations in paths.values():
            for operation in operations.values():
                if scope is not None:
                    operation["x-trellis-scope"] = scope.value
                    if auth.enabled:  # OAuth-style scopes on a bearer requirement
                        operation["security"] = auth.openapi_security(scope)
                # Keys as strings: JSON has no other, and "default" sorts among them.
                responses = {str(code): value for code, value in operation["responses"].items()}
                if media is not None:
                    names, description, model = media
                    schema: dict[str, Any] = {"type": "string"}
                    if model is not None:  # the items of a stream, as a named component
                        built, model_components = self.build_response_object(model, None)
                        components.update(model_components)
                        components[model.__name__] = built["content"]["application/json"]["schema"]
                        schema["description"] = f"items: #/components/schemas/{model.__name__}"
                    responses["200"] = {
                        "description": description,
                        "content": {name: {"schema": schema} for name in names},
                    }
                if no_body is not None:
                    responses["204"] = {"description": no_body}
                responses["default"] = error
                operation["responses"] = responses
        return paths, components


def _discriminate(document: dict[str, Any], types: list[TaskType]) -> None:
    """Document a submission as a union discriminated by ``type``: one variant per task
    type, whose ``payload`` is that type's payload schema (its contract)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    base = components.get("SubmitTask")
    if base is None or not types:
        return
    mapping: dict[str, str] = {}
    for task_type in types:
        name = "SubmitTask_" + re.sub(r"[^A-Za-z0-9_]", "_", task_type.name)
        variant = copy.deepcopy(base)
        variant["title"] = name
        variant["properties"]["type"] = {"type": "string", "const": task_type.name}
        shape = task_type.contract.payload
        if shape is not None:
            payload = shape.schema(ref_template=_REF)
            components.update(payload.pop("$defs", {}))
            payload["description"] = f"The payload of {task_type.name}: its contract."
            variant["properties"]["payload"] = payload
            variant["required"] = sorted({*variant.get("required", []), "payload"})
        components[name] = variant
        mapping[task_type.name] = _REF.format(model=name)
    components["SubmitTask"] = {
        "title": "SubmitTask",
        "description": base.get("description", "")
        + " One variant per task type, told apart by `type`.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }


def _request_models(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The schema of each request model: a component, or inline in an operation's body."""
    yield from document.get("components", {}).get("schemas", {}).values()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                yield body["schema"]
