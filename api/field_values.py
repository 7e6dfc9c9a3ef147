"""Checking the single values of a request: numbers, boxes, product ids, metadata, recipes.

Each function takes a value as :class:`api.request_body.Fields` gives it (a JSON value, or
the text of a form field; ``None`` when absent) and returns it typed and range-checked, or
raises one of siammatch's exceptions, which the error handlers map to a 4xx JSON answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from api.errors import MalformedJSONError, MissingFieldError
from api.request_body import parse_json
from index.products import MAX_METADATA_DEPTH, validate_metadata, validate_product_id
from matcher.errors import InvalidArgumentError, InvalidBoxError, UnknownComponentError
from matcher.images import Box, parse_box


def optional_float(value: Any, name: str, *, lo: float, hi: float) -> float | None:
    """A finite number in ``[lo, hi]`` from JSON or text; ``None`` passes through.

    Raises:
        InvalidArgumentError: not a number, or out of range.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and lo <= number <= hi):
        raise InvalidArgumentError(f"{name} must be within [{lo:g}, {hi:g}], got {value!r}")
    return number


def optional_int(value: Any, name: str, *, lo: int, hi: int) -> int | None:
    """An integer in ``[lo, hi]`` from JSON or text; ``None`` passes through.

    Raises:
        InvalidArgumentError: not an integer, or out of range.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,9}\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def optional_box(value: Any, name: str) -> Box | None:
    """A box from ``"x0,y0,x1,y1"`` or a JSON list of four numbers (no image check).

    Raises:
        InvalidBoxError: malformed.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return parse_box(value)
    if (
        isinstance(value, list | tuple)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return parse_box(",".join(repr(float(v)) for v in value))
    raise InvalidBoxError(f"{name} must be 'x0,y0,x1,y1' or a list of four numbers")


def product_id(value: Any, name: str = "id") -> str:
    """A product id as the catalog accepts it (:func:`index.products.validate_product_id`).

    Raises:
        MissingFieldError: absent.
        InvalidArgumentError: malformed.
    """
    if value is None:
        raise MissingFieldError(f"{name!r} is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return validate_product_id(value)


def metadata(value: Any) -> dict[str, Any]:
    """Product metadata: a JSON object, or its text in a form field, checked as the catalog
    will check it (:func:`index.products.validate_metadata`).

    Raises:
        MalformedJSONError: text that is not JSON, JSON that is not an object, or nested
            deeper than :data:`index.products.MAX_METADATA_DEPTH`.
        InvalidArgumentError: too large, or not encodable.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        value = parse_json(value, "metadata", max_depth=MAX_METADATA_DEPTH)
    if not isinstance(value, dict):
        raise MalformedJSONError("metadata must be a JSON object")
    validate_metadata(value)
    return value


def recipe_name(value: Any, allowed: Mapping[str, Any], default: str) -> str:
    """The recipe a request picks among those the service loaded.

    Raises:
        UnknownComponentError: not one of them.
    """
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise UnknownComponentError(
            f"unknown recipe {value!r}; this service offers: {', '.join(sorted(allowed))}"
        )
    return value
