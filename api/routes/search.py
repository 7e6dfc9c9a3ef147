"""``POST /v1/search``: which catalog products are in a scene, where, and their pixels.

The response's ``Server-Timing`` header gives the milliseconds of each stage
(``parse``: reading the request and decoding the scene, then :data:`index.search.STAGES`)
and the ``total``; the same stage times feed the ``siammatch_search_stage_seconds``
histogram of ``/metrics``.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, request

from api.routes.metrics import EXTENSION
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
          headers:
            Server-Timing:
              description: Milliseconds per stage (parse, decode, embed, retrieve,
                templates, verify, rerank) and the total, e.g. `verify;dur=512.3`.
              schema: {type: string}
          content:
            application/json:
              schema: {$ref: '#/components/schemas/SearchResult'}
        400: {$ref: '#/components/responses/BadRequest'}
        401: {$ref: '#/components/responses/Unauthorized'}
        413: {$ref: '#/components/responses/TooLarge'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    started = time.perf_counter()
    services = current_services()
    catalog = services.require_catalog()
    checked = parse_search(request, limits=services.limits)
    threshold = checked.threshold
    if threshold is None:
        threshold = services.default_threshold
    parsed = time.perf_counter()
    stages: dict[str, float] = {"parse": parsed - started}
    hits = search_scene(
        catalog,
        services.matcher,
        checked.scene,
        k=checked.k,
        candidates=max(services.search_candidates, checked.k),
        score_threshold=threshold,
        timings=stages,
    )
    done = time.perf_counter()
    height, width = checked.scene.shape[:2]
    response = jsonify(
        {
            "recipe": services.default_recipe,
            "scene_size": {"height": height, "width": width},
            "results": [hit.to_dict() for hit in hits],
            "elapsed_ms": round(1000 * (done - parsed), 1),
        }
    )
    current_app.extensions[EXTENSION].observe_stages(stages)
    response.headers["Server-Timing"] = server_timing({**stages, "total": done - started})
    return response


def server_timing(seconds: dict[str, float]) -> str:
    """A ``Server-Timing`` header value: ``name;dur=<milliseconds>`` per entry."""
    return ", ".join(f"{name};dur={1000 * value:.1f}" for name, value in seconds.items())
