"""Reading requests: JSON bodies and query strings, with 400s that name the problem."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
import pydantic_core
from quart import request

from .errors import ApiError, from_pydantic

M = TypeVar("M", bound=pydantic.BaseModel)


def parse_json(body: bytes) -> Any:
    """The JSON value in ``body``; a 400 for anything that is not JSON.

    NaN and infinities are refused, as are lone surrogates; nesting is limited (200 deep).
    """
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None


def parse_query(model: type[M]) -> M:
    """The query string as ``model``; a 400 naming the parameter otherwise."""
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from None
