"""``POST /v1/search``: which catalog products are in a scene, where, and their pixels."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from api.state import current_services
from api.validation import parse_search
from index.search import search_scene

bp = Blueprint("search", __name__, url_prefix="/v1")


@bp.post("/search")
def search() -> Response:
    """Find catalog products in a scene.

    Returns:
        The top ``k`` products after retrieval and batched verification, best first.
    ---
    post:
      summary: Search a scene for catalog products
      description: The scene is embedded, the nearest catalog products are retrieved and
        all of them are verified with the matcher in one batched pass; the products found
        come back re-ranked by verification score, each with its boxes and masks.
      tags: [search]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: {$ref: '#/components/schemas/SearchForm'}
          application/json:
            schema: {$ref: '#/components/schemas/SearchJson'}
      responses:
        200:
          description: The products found, best first (possibly none).
          content:
            application/json:
              schema: {$ref: '#/components/schemas/SearchResult'}
        400: {$ref: '#/components/responses/BadRequest'}
        401: {$ref: '#/components/responses/Unauthorized'}
        413: {$ref: '#/components/responses/TooLarge'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    services = current_services()
    catalog = services.require_catalog()
    checked = parse_search(request, limits=services.limits)
    threshold = checked.threshold
    if threshold is None:
        threshold = services.default_threshold
    started = time.perf_counter()
    hits = search_scene(
        catalog,
        services.matcher,
        checked.scene,
        k=checked.k,
        candidates=max(services.search_candidates, checked.k),
        score_threshold=threshold,
    )
    elapsed = time.perf_counter() - started
    height, width = checked.scene.shape[:2]
    return jsonify(
        {
            "recipe": services.default_recipe,
            "scene_size": {"height": height, "width": width},
            "results": [hit.to_dict() for hit in hits],
            "elapsed_ms": round(1000 * elapsed, 1),
        }
    )
