"""Request validation for every route, in one place.

The ``parse_*`` functions turn a request into a typed, fully checked value or raise one of
siammatch's exceptions, which the error handlers map to a 4xx JSON answer. They read the
body through :class:`api.request_body.Fields` (multipart or JSON alike) and check each
value with :mod:`api.field_values`.
Nothing heavy runs before every field has been checked, so a bad request costs no model
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import Request

from api.errors import CatalogUnavailableError, RequestError
from api.field_values import (
    metadata,
    optional_box,
    product_id,
    recipe_name,
)
from api.request_body import Fields, decode_image, require_bytes
from api.request_fields import MAX_INSTANCES, PAGE_LIMIT, THRESHOLD, K
from matcher.images import Box, ImageLimits, validate_box
from matcher.structures import Reference


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
    threshold = THRESHOLD.parse(fields.value("threshold"), limits)
    max_instances = MAX_INSTANCES.parse(fields.value("max_instances"), limits)
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
    k = K.parse(fields.value("k"), limits)
    threshold = THRESHOLD.parse(fields.value("threshold"), limits)
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
    limit = PAGE_LIMIT.parse(args.get("limit") or None, limits)
    return cursor, min(default, limits.max_page_size) if limit is None else limit
