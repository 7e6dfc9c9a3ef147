"""``POST /v1/match``: find a reference product in a scene."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from api.state import current_services
from api.validation import parse_match

bp = Blueprint("match", __name__, url_prefix="/v1")


@bp.post("/match")
def match() -> Response:
    """Find every instance of a reference in a scene.

    Returns:
        The match result: instances (box, score, mask as COCO RLE, polygon), best first.
    ---
    post:
      summary: Find a reference product in a scene
      description: |
        The reference is an uploaded product photo (with an optional box; without one the
        product is the foreground of a plain-background packshot, else the whole image) or
        a catalog product named by `reference_id`. Send `multipart/form-data` with file
        parts, or JSON with the images as base64 strings.
      tags: [match]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: {$ref: '#/components/schemas/MatchForm'}
          application/json:
            schema: {$ref: '#/components/schemas/MatchJson'}
      responses:
        200:
          description: The instances found, best first (possibly none).
          content:
            application/json:
              schema: {$ref: '#/components/schemas/MatchResult'}
        400: {$ref: '#/components/responses/BadRequest'}
        401: {$ref: '#/components/responses/Unauthorized'}
        404: {$ref: '#/components/responses/NotFound'}
        413: {$ref: '#/components/responses/TooLarge'}
        415: {$ref: '#/components/responses/BadRequest'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    services = current_services()
    checked = parse_match(
        request,
        limits=services.limits,
        recipes=services.matchers,
        default_recipe=services.default_recipe,
        has_catalog=services.catalog is not None,
    )
    reference = checked.reference
    if checked.reference_id is not None:
        reference = services.catalog_reference(checked.reference_id, checked.recipe)
    matcher = services.matchers[checked.recipe]
    threshold = checked.threshold
    if threshold is None:
        threshold = services.default_threshold
    max_instances = checked.max_instances or services.default_max_instances(checked.recipe)
    started = time.perf_counter()
    result = matcher.match(
        reference,
        checked.scene,
        max_instances=max_instances,
        score_threshold=threshold,
    )
    elapsed = time.perf_counter() - started
    return jsonify(
        {"recipe": checked.recipe, **result.to_dict(), "elapsed_ms": round(1000 * elapsed, 1)}
    )
