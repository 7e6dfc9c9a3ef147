"""``/openapi.json``: the OpenAPI 3 document, generated from the routes themselves.

apispec's ``FlaskPlugin`` reads every view of the application (except static files): the
path comes from the view's URL rule and the operations from the YAML after ``---`` in the
view's docstring, so the document cannot list a route that does not exist nor miss one
that does (a test checks both directions). The shared schemas and responses are below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify

from api.request_fields import MAX_INSTANCES, QUERY_FIELDS, THRESHOLD, K, recipe_schema
from api.state import EXTENSION, current_services
from api.validation import Limits

bp = Blueprint("openapi", __name__)

API_VERSION = "1.0.0"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid_image"},
                "message": {"type": "string"},
            },
        }
    },
}
_RLE = {
    "type": "object",
    "nullable": True,
    "description": "COCO run-length encoding (compressed string counts, column-major)",
    "properties": {
        "size": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "counts": {"type": "string"},
    },
}
_BOX = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 4,
    "maxItems": 4,
    "description": "x0, y0, x1, y1 in pixels",
}
_INSTANCE = {
    "type": "object",
    "properties": {
        "box": _BOX,
        "score": {"type": "number"},
        "mask": {"$ref": "#/components/schemas/Rle"},
        "polygon": {
            "type": "array",
            "nullable": True,
            "items": {"type": "array", "items": {"type": "number"}},
        },
    },
}
_SCENE_SIZE = {
    "type": "object",
    "properties": {"height": {"type": "integer"}, "width": {"type": "integer"}},
}
_MATCH_RESULT = {
    "type": "object",
    "properties": {
        "recipe": {"type": "string"},
        "reference_id": {"type": "string", "nullable": True},
        "scene_size": _SCENE_SIZE,
        "instances": {"type": "array", "items": {"$ref": "#/components/schemas/Instance"}},
        "elapsed_ms": {"type": "number"},
    },
}
_PRODUCT = {
    "type": "object",
    "properties": {
        "product_id": {"type": "string"},
        "metadata": {"type": "object"},
        "box": {**_BOX, "nullable": True},
        "created_at": {"type": "number", "description": "UNIX time of the add, seconds"},
        "image_size": _SCENE_SIZE,
        "image_url": {"type": "string"},
    },
}
_ADD_FORM = {
    "type": "object",
    "required": ["id", "image"],
    "properties": {
        "id": {"type": "string"},
        "image": {"type": "string", "format": "binary"},
        "metadata": {"type": "string", "description": "a JSON object"},
        "box": {"type": "string", "example": "10,20,110,140"},
    },
}
_ADD_JSON = {
    "type": "object",
    "required": ["id", "image"],
    "properties": {
        "id": {"type": "string"},
        "image": {"type": "string", "format": "byte"},
        "metadata": {"type": "object"},
        "box": {"oneOf": [{"type": "string"}, _BOX]},
    },
}
_PAGE = {
    "type": "object",
    "properties": {
        "products": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
        "next_cursor": {"type": "string", "nullable": True},
        "total": {"type": "integer", "description": "products in the catalog"},
    },
}
_SEARCH_RESULT = {
    "type": "object",
    "properties": {
        "recipe": {"type": "string"},
        "scene_size": _SCENE_SIZE,
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "product_id": {"type": "string"},
                    "score": {"type": "number"},
                    "retrieval_score": {"type": "number"},
                    "metadata": {"type": "object"},
                    "instances": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Instance"},
                    },
                },
            },
        },
        "elapsed_ms": {"type": "number"},
    },
}
_READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "default_recipe": {"type": "string"},
        "recipes": {"type": "array", "items": {"type": "string"}},
        "catalog": {"type": "object", "nullable": True},
    },
}


def request_schemas(limits: Limits, recipes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The request bodies of match and search under the service's ``limits`` and
    ``recipes``: their numeric fields and the recipe enum come from
    :mod:`api.request_fields`, which validation uses too."""
    common = {
        "recipe": recipe_schema(recipes),
        "threshold": THRESHOLD.openapi(limits),
        "max_instances": MAX_INSTANCES.openapi(limits),
        "reference_box": {"type": "string", "example": "10,20,110,140"},
        "reference_id": {"type": "string", "description": "a catalog product instead of a file"},
    }
    search = {"k": K.openapi(limits), "threshold": THRESHOLD.openapi(limits)}
    return {
        "MatchForm": {
            "type": "object",
            "required": ["scene"],
            "properties": {
                "reference": {"type": "string", "format": "binary"},
                "scene": {"type": "string", "format": "binary"},
                **common,
            },
        },
        "MatchJson": {
            "type": "object",
            "required": ["scene"],
            "properties": {
                "reference": {"type": "string", "format": "byte"},
                "scene": {"type": "string", "format": "byte"},
                **common,
                "reference_box": {"oneOf": [{"type": "string"}, _BOX]},
            },
        },
        "SearchForm": {
            "type": "object",
            "required": ["scene"],
            "properties": {"scene": {"type": "string", "format": "binary"}, **search},
        },
        "SearchJson": {
            "type": "object",
            "required": ["scene"],
            "properties": {"scene": {"type": "string", "format": "byte"}, **search},
        },
    }


#: The schemas that do not depend on the service's configuration.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _ERROR,
    "Rle": _RLE,
    "Instance": _INSTANCE,
    "MatchResult": _MATCH_RESULT,
    "Product": _PRODUCT,
    "ProductPage": _PAGE,
    "AddForm": _ADD_FORM,
    "AddJson": _ADD_JSON,
    "SearchResult": _SEARCH_RESULT,
    "Readiness": _READINESS,
}

RESPONSES = {
    "BadRequest": "The request is invalid (fields, images, box, recipe, JSON, base64), or "
    "an image's aspect ratio is over the limit (image_too_thin).",
    "Unauthorized": "The service has an API key and the request did not present it.",
    "NotFound": "No such product (or route).",
    "Conflict": "A product with this id already exists.",
    "TooLarge": "The upload exceeds the size limit, or an image the pixel or side limit.",
    "Unavailable": "The service runs without a catalog.",
}


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every non-static view of ``app``.

    Args:
        app: the application; its views' docstrings hold the operations, its services
            the limits and recipes the request schemas state.

    Returns:
        The OpenAPI 3.0 document as a dict.
    """
    services = app.extensions[EXTENSION]
    spec = APISpec(
        title="siammatch",
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={
            "description": "One-shot product matching with Siamese trackers: match a "
            "reference in a scene, manage a product catalog, search a scene for catalog "
            'products. Every error is JSON {"error": {"code", "message"}}.'
        },
    )
    schemas = {**SCHEMAS, **request_schemas(services.limits, services.matchers)}
    for name, schema in sorted(schemas.items()):
        spec.components.schema(name, schema)
    for name, text in RESPONSES.items():
        spec.components.response(
            name,
            {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    spec.components.security_scheme("Bearer", {"type": "http", "scheme": "bearer"})
    for endpoint, view in sorted(app.view_functions.items()):
        if endpoint == "static" or endpoint.endswith(".static"):
            continue
        spec.path(view=view, app=app)
    document = spec.to_dict()
    _bound_query_parameters(document, services.limits)
    if app.config.get("API_KEY"):
        document["security"] = [{"ApiKey": []}, {"Bearer": []}]
    return document


def _bound_query_parameters(document: dict[str, Any], limits: Limits) -> None:
    """Give the views' query parameters of :data:`api.request_fields.QUERY_FIELDS` the
    bounds validation enforces (a docstring states a parameter; its range lives here)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                field = QUERY_FIELDS.get(parameter.get("name"))
                if field is not None and parameter.get("in") == "query":
                    declared = field.openapi(limits)
                    parameter["schema"] = {**parameter.get("schema", {}), **declared}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of this service.

    Returns:
        The OpenAPI 3.0 JSON document.
    ---
    get:
      summary: OpenAPI document
      tags: [service]
      security: []
      responses:
        200:
          description: This document.
          content:
            application/json:
              schema: {type: object}
    """
    services = current_services()
    if services.openapi is None:
        services.openapi = build_spec(current_app._get_current_object())
    return jsonify(services.openapi)
