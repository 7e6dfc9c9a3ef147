"""``/v1/catalog``: add, read, list and delete catalog products."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from api.state import current_services
from api.validation import parse_add, parse_page

bp = Blueprint("catalog", __name__, url_prefix="/v1")


def product_json(product: Any) -> dict[str, Any]:
    """The JSON form of a catalog product: its record and the URL of its photo."""
    return {
        **product.to_dict(),
        "image_url": url_for("catalog.product_image", product_id=product.product_id),
    }


@bp.post("/catalog")
def add_product() -> tuple[Response, int, dict[str, str]]:
    """Add a product to the catalog.

    Returns:
        201 with the stored product and its ``Location``.
    ---
    post:
      summary: Add a catalog product
      description: |
        The product photo is embedded and indexed; `box` (x0,y0,x1,y1) marks the product
        in it (default: the foreground of a plain-background packshot).
      tags: [catalog]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: {$ref: '#/components/schemas/AddForm'}
          application/json:
            schema: {$ref: '#/components/schemas/AddJson'}
      responses:
        201:
          description: Added.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Product'}
        400: {$ref: '#/components/responses/BadRequest'}
        401: {$ref: '#/components/responses/Unauthorized'}
        409: {$ref: '#/components/responses/Conflict'}
        413: {$ref: '#/components/responses/TooLarge'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    services = current_services()
    catalog = services.require_catalog()
    checked = parse_add(request, limits=services.limits)
    product = catalog.add(
        checked.product_id,
        checked.image,
        metadata=checked.metadata,
        box=checked.box,
        limits=services.limits.image,
    )
    body = product_json(product)
    return jsonify(body), 201, {"Location": body["image_url"].removesuffix("/image")}


@bp.get("/catalog")
def list_products() -> Response:
    """List catalog products, a page at a time.

    Returns:
        The page and the cursor of the next one (``null`` after the last page).
    ---
    get:
      summary: List catalog products
      tags: [catalog]
      parameters:
        - {in: query, name: cursor, schema: {type: string}, description: from next_cursor}
        - {in: query, name: limit, schema: {type: integer, minimum: 1, default: 50}}
      responses:
        200:
          description: One page of products.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/ProductPage'}
        400: {$ref: '#/components/responses/BadRequest'}
        401: {$ref: '#/components/responses/Unauthorized'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    services = current_services()
    catalog = services.require_catalog()
    cursor, limit = parse_page(request.args, limits=services.limits)
    products, next_cursor = catalog.list(cursor=cursor, limit=limit)
    return jsonify(
        {
            "products": [product_json(p) for p in products],
            "next_cursor": next_cursor,
            "total": len(catalog),
        }
    )


@bp.get("/catalog/<product_id>")
def get_product(product_id: str) -> Response:
    """One catalog product's record.

    Args:
        product_id: the product's id.

    Returns:
        The product (metadata, box, creation time, image URL).
    ---
    get:
      summary: Get a catalog product
      tags: [catalog]
      parameters:
        - {in: path, name: product_id, required: true, schema: {type: string}}
      responses:
        200:
          description: The product.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Product'}
        401: {$ref: '#/components/responses/Unauthorized'}
        404: {$ref: '#/components/responses/NotFound'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    return jsonify(product_json(_get(product_id)))


@bp.get("/catalog/<product_id>/image")
def product_image(product_id: str) -> Response:
    """A catalog product's stored photo.

    Args:
        product_id: the product's id.

    Returns:
        The PNG.
    ---
    get:
      summary: Get a catalog product's photo
      tags: [catalog]
      parameters:
        - {in: path, name: product_id, required: true, schema: {type: string}}
      responses:
        200:
          description: The photo as PNG.
          content:
            image/png:
              schema: {type: string, format: binary}
        401: {$ref: '#/components/responses/Unauthorized'}
        404: {$ref: '#/components/responses/NotFound'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    product = _get(product_id)
    response = Response(product.image_png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.delete("/catalog/<product_id>")
def delete_product(product_id: str) -> Response:
    """Delete a catalog product.

    Args:
        product_id: the product's id.

    Returns:
        ``{"product_id": ..., "deleted": true}``.
    ---
    delete:
      summary: Delete a catalog product
      tags: [catalog]
      parameters:
        - {in: path, name: product_id, required: true, schema: {type: string}}
      responses:
        200:
          description: Deleted.
          content:
            application/json:
              schema:
                type: object
                properties:
                  product_id: {type: string}
                  deleted: {type: boolean}
        401: {$ref: '#/components/responses/Unauthorized'}
        404: {$ref: '#/components/responses/NotFound'}
        503: {$ref: '#/components/responses/Unavailable'}
    """
    services = current_services()
    catalog = services.require_catalog()
    catalog.delete(product_id)
    return jsonify({"product_id": product_id, "deleted": True})


def _get(text: str) -> Any:
    return current_services().require_catalog().get(text)
