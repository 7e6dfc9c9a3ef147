"""``/v1/catalog``: add, get, photo, list with cursors, delete; 4xx JSON for mistakes.

Every test that reaches the catalog runs on both backends (``client``: a catalog folder and
a PostgreSQL database); the request checks that refuse a request first use a folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.catalog import Catalog
from tests.api.http_helpers import b64, decode_png, upload
from tests.helpers import iou


def add(client, pictures, product_id="coffee", **fields):
    data = {"id": product_id, "image": upload(pictures.product_png, "p.png"), **fields}
    return client.post("/v1/catalog", data={k: v for k, v in data.items() if v is not None})


def test_add_get_image_delete(client, pictures):
    response = add(client, pictures, metadata=json.dumps({"name": "Coffee", "price": 3.5}))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["product_id"] == "coffee"
    assert body["metadata"] == {"name": "Coffee", "price": 3.5}
    assert body["image_url"] == "/v1/catalog/coffee/image"
    assert response.headers["Location"].endswith("/v1/catalog/coffee")

    got = client.get("/v1/catalog/coffee")
    assert got.status_code == 200
    assert got.get_json()["metadata"] == {"name": "Coffee", "price": 3.5}
    assert got.get_json()["created_at"] == body["created_at"]

    image = client.get("/v1/catalog/coffee/image")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert np.array_equal(decode_png(image.data), pictures.product)

    deleted = client.delete("/v1/catalog/coffee")
    assert deleted.status_code == 200
    assert deleted.get_json() == {"product_id": "coffee", "deleted": True}
    for path in ("/v1/catalog/coffee", "/v1/catalog/coffee/image"):
        missing = client.get(path)
        assert missing.status_code == 404
        assert missing.get_json()["error"]["code"] == "product_not_found"
    assert client.delete("/v1/catalog/coffee").status_code == 404


def test_add_with_json_body_and_box(client, pictures):
    payload = {
        "id": "scene-crop",
        "image": b64(pictures.scene_png),
        "metadata": {"name": "from a scene"},
        "box": list(pictures.box),
    }
    response = client.post("/v1/catalog", json=payload)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["box"] == [float(v) for v in pictures.box]
    stored = client.get("/v1/catalog/scene-crop").get_json()
    assert stored["box"] == [float(v) for v in pictures.box]


def test_added_product_is_in_the_catalog_object(app, client, pictures):
    assert add(client, pictures, "p-1").status_code == 201
    catalog = app.extensions["siammatch"].catalog
    assert isinstance(catalog, Catalog)
    assert "p-1" in catalog and len(catalog) == 1


def test_list_pages_with_cursor(client, pictures):
    ids = [f"item-{i:02d}" for i in range(7)]
    for pid in reversed(ids):
        assert add(client, pictures, pid).status_code == 201
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/catalog", query_string=query).get_json()
        pages += 1
        assert len(page["products"]) <= 3
        assert page["total"] == 7
        seen += [p["product_id"] for p in page["products"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3
    assert client.get("/v1/catalog").get_json()["next_cursor"] is None


def test_match_with_a_catalog_reference(client, pictures):
    assert add(client, pictures, "coffee").status_code == 201
    response = client.post(
        "/v1/match",
        data={"reference_id": "coffee", "scene": upload(pictures.scene_png)},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["reference_id"] == "coffee"
    assert iou(body["instances"][0]["box"], pictures.box) >= 0.8
    missing = client.post(
        "/v1/match", data={"reference_id": "nope", "scene": upload(pictures.scene_png)}
    )
    assert missing.status_code == 404
    both = client.post(
        "/v1/match",
        data={
            "reference_id": "coffee",
            "reference": upload(pictures.product_png),
            "scene": upload(pictures.scene_png),
        },
    )
    assert both.status_code == 400 and "not both" in both.get_json()["error"]["message"]


def test_readyz_reports_the_catalog(client, backend, pictures):
    add(client, pictures, "a")
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert body["catalog"]["products"] == 1
    assert body["catalog"]["backend"] == backend
    assert body["catalog"]["index"]["vectors"] == 1
    replication = body["catalog"]["replication"]
    assert replication["changes_behind"] == 0 and replication["lag_seconds"] == 0
    assert replication["follower"] is True  # the service follows the change log
    assert not {"path", "bytes", "index_cache"} & set(body["catalog"])


def test_readyz_is_503_when_the_catalog_fails(app, monkeypatch):
    catalog = app.extensions["siammatch"].catalog
    catalog.close()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "not ready"


def test_duplicate_id_is_409(client, pictures):
    assert add(client, pictures, "dup").status_code == 201
    response = add(client, pictures, "dup")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "duplicate_product"


@pytest.mark.parametrize(
    "fields, status, code",
    [
        ({"id": None}, 400, "missing_field"),
        ({"id": "has space"}, 400, "invalid_argument"),
        ({"id": "x" * 200}, 400, "invalid_argument"),
        ({"image": None}, 400, "missing_field"),
        ({"image": (b"", "e.png")}, 400, "invalid_image"),
        ({"image": (b"GIF89a-not-really", "x.gif")}, 400, "invalid_image"),
        ({"metadata": "{broken"}, 400, "malformed_json"),
        ({"metadata": "[1, 2]"}, 400, "malformed_json"),
        ({"box": "0,0,5"}, 400, "invalid_box"),
        ({"box": "0,0,500,500"}, 400, "invalid_box"),
    ],
)
def test_add_mistakes(client, pictures, fields, status, code):
    # A file part is made here: one read by a run on the other backend would be closed.
    files = {k: upload(*v) for k, v in fields.items() if isinstance(v, tuple)}
    data = {"id": "good-id", "image": upload(pictures.product_png, "p.png"), **fields, **files}
    response = client.post("/v1/catalog", data={k: v for k, v in data.items() if v is not None})
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert client.get("/v1/catalog").get_json()["products"] == []  # nothing half-added


def test_add_mistakes_in_json(folder_client, pictures):
    client = folder_client
    bad_b64 = client.post("/v1/catalog", json={"id": "a", "image": "@@@"})
    assert bad_b64.get_json()["error"]["code"] == "invalid_base64"
    bad_meta = client.post(
        "/v1/catalog", json={"id": "a", "image": b64(pictures.product_png), "metadata": [1]}
    )
    assert bad_meta.get_json()["error"]["code"] == "malformed_json"
    huge = client.post(
        "/v1/catalog",
        json={"id": "a", "image": b64(pictures.product_png), "metadata": {"x": "y" * 70_000}},
    )
    assert huge.status_code == 400 and huge.get_json()["error"]["code"] == "invalid_argument"


@pytest.mark.parametrize(
    "query, words",
    [({"limit": "0"}, "limit"), ({"limit": "5000"}, "limit"), ({"limit": "ten"}, "limit")],
)
def test_list_mistakes(folder_client, query, words):
    response = folder_client.get("/v1/catalog", query_string=query)
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]


def test_catalog_methods(make_app):
    client = make_app().test_client()  # the URL map refuses them: no catalog needed
    assert client.put("/v1/catalog/a").status_code == 405
    assert client.patch("/v1/catalog").status_code == 405
    assert client.post("/v1/catalog/a/image").status_code == 405


def test_catalog_routes_without_catalog_are_503(make_app, pictures):
    client = make_app().test_client()
    for response in (
        client.get("/v1/catalog"),
        client.get("/v1/catalog/a"),
        client.delete("/v1/catalog/a"),
        add(client, pictures, "a"),
        client.post("/v1/search", data={"scene": upload(pictures.scene_png)}),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "catalog_unavailable"


def test_injected_catalog_is_used(make_app, catalog_location, pictures):
    catalog = Catalog(catalog_location)
    catalog.add("pre", pictures.other)
    client = make_app(CATALOG=catalog).test_client()
    assert client.get("/v1/catalog/pre").status_code == 200
    catalog.close()
