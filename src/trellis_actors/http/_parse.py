"""Reading requests: JSON bodies and query strings, with 400s that name the problem."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
import pydantic_core
from quart import request

from ..rules import MAX_JSON_DEPTH
from .errors import ApiError, from_pydantic

M = TypeVar("M", bound=pydantic.BaseModel)


def parse_json(body: bytes) -> Any:
    """The JSON value in ``body``; a 400 for anything that is not JSON.

    NaN and infinities are refused, as are lone surrogates; nesting is limited (about 200
    deep: the parser's own limit, well past the rules' ``MAX_JSON_DEPTH``).
    """
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise ApiError(
                400,
                "validation_error",
                "the request body nests arrays and objects too deep to read; a payload may "
                f"nest at most {MAX_JSON_DEPTH} levels",
            ) from None
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None


def parse_query(model: type[M]) -> M:
    """The query string as ``model``; a 400 naming the parameter otherwise."""
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from None
