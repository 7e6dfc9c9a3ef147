"""Request validation for every route, in one place.

A request body is either ``multipart/form-data`` (images as file parts, other values as
text fields) or ``application/json`` (images as base64 strings, optionally as
``data:image/...;base64,`` URLs; numbers as numbers or strings). JSON is parsed here
only, by :func:`parse_json`, which refuses nesting deeper than :data:`MAX_JSON_DEPTH` with a
400 (a body of 1,000 nested arrays must not reach the recursion limit of anything that
walks it later). :class:`Fields` hides the difference; the ``parse_*`` functions turn a
request into a typed, fully checked value or raise one of siammatch's exceptions, which
the error handlers map to a 4xx JSON answer.
Nothing heavy runs before every field has been checked, so a bad request costs no model
time.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import Request

from api.errors import (
    CatalogUnavailableError,
    InvalidBase64Error,
    MalformedJSONError,
    MissingFieldError,
    RequestError,
    UnsupportedMediaTypeError,
)
from index.products import (
    MAX_METADATA_DEPTH,
    json_depth,
    validate_metadata,
    validate_product_id,
)
from matcher.errors import (
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
    UnknownComponentError,
)
from matcher.images import Box, ImageLimits, load_image, parse_box, validate_box
from matcher.structures import Reference

_DATA_URL = re.compile(r"\Adata:[\w/+.-]*;base64,", re.IGNORECASE)

#: Deepest nesting of arrays and objects accepted in a JSON body (the body itself is 1).
MAX_JSON_DEPTH = MAX_METADATA_DEPTH + 1


def parse_json(data: bytes | str, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text, refusing malformed and too deeply nested documents.

    Args:
        data: the text (bytes in UTF-8, -16 or -32, or str).
        what: what the text is, for messages.
        max_depth: deepest accepted nesting of arrays and objects.

    Raises:
        MalformedJSONError: not JSON, or nested deeper than ``max_depth``.
    """
    too_deep = f"{what} is nested more than {max_depth} levels deep"
    try:
        value = json.loads(data)
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit
        raise MalformedJSONError(too_deep) from None
    except json.JSONDecodeError as exc:
        raise MalformedJSONError(f"{what} is not valid JSON: {exc.msg}") from None
    except ValueError:  # undecodable bytes
        raise MalformedJSONError(f"{what} is not valid JSON text") from None
    if json_depth(value, limit=max_depth) > max_depth:
        raise MalformedJSONError(too_deep)
    return value


class Fields:
    """Uniform read access to a request's values, multipart or JSON.

    Args:
        request: the Flask request.

    Raises:
        MalformedJSONError: a JSON body that does not parse or is not an object.
        UnsupportedMediaTypeError: neither multipart/form nor JSON.
    """

    def __init__(self, request: Request) -> None:
        self._json: dict[str, Any] | None = None
        mimetype = request.mimetype
        if mimetype == "application/json" or mimetype.endswith("+json"):
            body = parse_json(request.get_data(cache=True), "the request body")
            if not isinstance(body, dict):
                raise MalformedJSONError("the JSON body must be an object")
            self._json = body
        elif mimetype in ("multipart/form-data", "application/x-www-form-urlencoded") or (
            not mimetype and not request.content_length
        ):  # no body at all reads as an empty form: its fields are missing
            self._form = request.form
            self._files = request.files
        else:
            raise UnsupportedMediaTypeError(
                f"send multipart/form-data or application/json, not {mimetype or 'no body'!r}"
            )

    @property
    def is_json(self) -> bool:
        """Whether the body is JSON."""
        return self._json is not None

    def value(self, name: str) -> Any:
        """A non-file value: a JSON value, or the text of a form field; ``None`` if absent.

        Empty form fields count as absent.
        """
        if self._json is not None:
            return self._json.get(name)
        text = self._form.get(name)
        return text if text not in (None, "") else None

    def has(self, name: str) -> bool:
        """Whether the request carries ``name`` at all (as a file, field or key)."""
        if self._json is not None:
            return self._json.get(name) is not None
        return name in self._files or self.value(name) is not None

    def image_bytes(self, name: str) -> bytes | None:
        """The encoded bytes of image ``name``; ``None`` if absent.

        Raises:
            InvalidImageError: the part or string is present but empty.
            InvalidBase64Error: a JSON string that is not base64.
        """
        if self._json is not None:
            raw = self._json.get(name)
            if raw is None:
                return None
            if not isinstance(raw, str):
                raise InvalidBase64Error(f"{name!r} must be a base64 string")
            data = _b64decode(raw, name)
        else:
            part = self._files.get(name)
            if part is None:
                if self.value(name) is not None:
                    raise RequestError(f"{name!r} must be sent as a file part, not a text field")
                return None
            data = part.read()
        if not data:
            raise InvalidImageError(f"image {name!r} is empty")
        return data


def _b64decode(text: str, name: str) -> bytes:
    text = _DATA_URL.sub("", text.strip(), count=1)
    text = "".join(text.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64Error(f"{name!r} is not valid base64") from None


def require_bytes(fields: Fields, name: str) -> bytes:
    """The encoded bytes of required image ``name`` (not yet decoded).

    Raises:
        MissingFieldError: absent.
        InvalidImageError: empty.
        InvalidBase64Error: not base64 (JSON bodies).
    """
    data = fields.image_bytes(name)
    if data is None:
        kind = "a base64 string" if fields.is_json else "a file part"
        raise MissingFieldError(f"{name!r} is required ({kind})")
    return data


def decode_image(data: bytes, *, limits: ImageLimits) -> np.ndarray:
    """Decode encoded image bytes to ``(H, W, 3)`` uint8 RGB.

    Raises:
        InvalidImageError: corrupt or not an image.
        ImageTooLargeError: over ``limits``' pixels or side.
        ImageTooThinError: over ``limits``' aspect ratio.
    """
    return load_image(data, limits=limits)


# -- scalar values ----------------------------------------------------------------------


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


# -- whole requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The service's limits that validation enforces (from the app config).

    Attributes:
        image: what every uploaded image (reference, scene, catalog photo) must fit.
        max_instances / max_k / max_page_size: caps on the request's counts.
    """

    image: ImageLimits
    max_instances: int
    max_k: int
    max_page_size: int


@dataclass(frozen=True)
class MatchRequest:
    """A checked ``POST /v1/match``.

    Attributes:
        reference: the uploaded reference, its box checked against its image; ``None``
            when the request names a catalog product instead.
        reference_id: the catalog product used as reference, or ``None``.
        scene: ``(H, W, 3)`` uint8 RGB.
        recipe: one of the service's recipes.
        threshold: minimum score, or ``None`` for the service default.
        max_instances: cap, or ``None`` for the recipe's default.
    """

    reference: Reference | None
    reference_id: str | None
    scene: np.ndarray
    recipe: str
    threshold: float | None
    max_instances: int | None


def parse_match(
    request: Request,
    *,
    limits: Limits,
    recipes: Mapping[str, Any],
    default_recipe: str,
    has_catalog: bool,
) -> MatchRequest:
    """Check a match request: reference (file or catalog id), scene and parameters.

    Args:
        request: the Flask request.
        limits: the service's limits.
        recipes: the recipes the service offers.
        default_recipe: used when the request names none.
        has_catalog: whether ``reference_id`` can be served.

    Raises:
        SiammatchError: any invalid field (see the module docstring).
    """
    fields = Fields(request)
    recipe = recipe_name(fields.value("recipe"), recipes, default_recipe)
    threshold = optional_float(fields.value("threshold"), "threshold", lo=0.0, hi=1.0)
    max_instances = optional_int(
        fields.value("max_instances"), "max_instances", lo=1, hi=limits.max_instances
    )
    box = optional_box(fields.value("reference_box"), "reference_box")
    ref_id = fields.value("reference_id")
    if ref_id is not None:
        if fields.has("reference"):
            raise RequestError("send either 'reference' or 'reference_id', not both")
        if box is not None:
            raise RequestError("'reference_box' does not apply to a catalog reference")
        if not has_catalog:
            raise CatalogUnavailableError("this service has no catalog to take reference_id from")
        ref_id = product_id(ref_id, "reference_id")
    ref_data = require_bytes(fields, "reference") if ref_id is None else None
    scene = decode_image(require_bytes(fields, "scene"), limits=limits.image)
    reference = None
    if ref_data is not None:
        image = decode_image(ref_data, limits=limits.image)
        if box is not None:
            box = validate_box(box, image.shape[:2], name="reference_box")
        reference = Reference.from_image(image, box, limits=limits.image)
    return MatchRequest(
        reference=reference,
        reference_id=ref_id,
        scene=scene,
        recipe=recipe,
        threshold=threshold,
        max_instances=max_instances,
    )


@dataclass(frozen=True)
class AddRequest:
    """A checked ``POST /v1/catalog``.

    Attributes:
        product_id: the new product's id.
        image: ``(H, W, 3)`` uint8 RGB reference photo.
        metadata: JSON object stored with the product.
        box: the product's box in ``image``, or ``None`` for automatic.
    """

    product_id: str
    image: np.ndarray
    metadata: dict[str, Any]
    box: Box | None


def parse_add(request: Request, *, limits: Limits) -> AddRequest:
    """Check a catalog add: ``id``, ``image``, optional ``metadata`` and ``box``.

    Raises:
        SiammatchError: any invalid field.
    """
    fields = Fields(request)
    pid = product_id(fields.value("id"))
    meta = metadata(fields.value("metadata"))
    box = optional_box(fields.value("box"), "box")
    image = decode_image(require_bytes(fields, "image"), limits=limits.image)
    if box is not None:
        box = validate_box(box, image.shape[:2], name="box")
    return AddRequest(product_id=pid, image=image, metadata=meta, box=box)


@dataclass(frozen=True)
class SearchRequest:
    """A checked ``POST /v1/search``.

    Attributes:
        scene: ``(H, W, 3)`` uint8 RGB.
        k: number of products to return.
        threshold: minimum verification score, or ``None`` for the default.
    """

    scene: np.ndarray
    k: int
    threshold: float | None


def parse_search(request: Request, *, limits: Limits, default_k: int = 5) -> SearchRequest:
    """Check a scene search: ``scene``, optional ``k`` and ``threshold``.

    Raises:
        SiammatchError: any invalid field.
    """
    fields = Fields(request)
    k = optional_int(fields.value("k"), "k", lo=1, hi=limits.max_k)
    threshold = optional_float(fields.value("threshold"), "threshold", lo=0.0, hi=1.0)
    scene = decode_image(require_bytes(fields, "scene"), limits=limits.image)
    return SearchRequest(
        scene=scene, k=min(default_k, limits.max_k) if k is None else k, threshold=threshold
    )


def parse_page(
    args: Mapping[str, str], *, limits: Limits, default: int = 50
) -> tuple[str | None, int]:
    """``cursor`` and ``limit`` query parameters of ``GET /v1/catalog``.

    Returns:
        ``(cursor or None, limit)``.

    Raises:
        InvalidArgumentError: a limit that is not an integer in ``[1, max_page_size]``.
    """
    cursor = args.get("cursor") or None
    limit = optional_int(args.get("limit") or None, "limit", lo=1, hi=limits.max_page_size)
    return cursor, min(default, limits.max_page_size) if limit is None else limit
