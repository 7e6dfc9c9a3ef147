"""``/healthz`` (the process answers) and ``/readyz`` (models and catalog are usable)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from api.state import current_services

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process is up and serving requests.

    Returns:
        ``{"status": "ok"}``.
    ---
    get:
      summary: Liveness probe
      tags: [service]
      security: []
      responses:
        200:
          description: The process is alive.
          content:
            application/json:
              schema:
                type: object
                properties:
                  status: {type: string, enum: [ok]}
    """
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the matchers are loaded and the catalog (if any) answers.

    Returns:
        200 with the recipes and catalog facts, or 503 when the catalog fails.
    ---
    get:
      summary: Readiness probe
      description: 200 once the models are loaded and the catalog, if the service has
        one, answers a query; 503 otherwise.
      tags: [service]
      security: []
      responses:
        200:
          description: Ready.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Readiness'}
        503:
          description: Not ready.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Readiness'}
    """
    services = current_services()
    body: dict = {
        "status": "ready",
        "default_recipe": services.default_recipe,
        "recipes": sorted(services.matchers),
        "catalog": None,
    }
    if services.catalog is not None:
        try:
            info = services.catalog.info()
            # The probe is open even with an API key: no filesystem paths or sizes in it.
            hidden = ("path", "bytes", "index_cache")
            body["catalog"] = {k: v for k, v in info.items() if k not in hidden}
        except Exception as exc:  # a probe reports the failure instead of raising it
            logger.error("readiness: the catalog does not answer", exc_info=exc)
            body["status"] = "not ready"
            body["catalog"] = {"error": type(exc).__name__}
            response = jsonify(body)
            response.status_code = 503
            return response
    return jsonify(body)
