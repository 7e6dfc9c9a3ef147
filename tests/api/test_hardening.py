"""Issue 18 with Flask's test client: thin and long images on every route, deeply nested
JSON, the decompression-bomb message, ``nosniff``, the OpenAPI corrections and the
README's error table. (Slow clients and gunicorn's own errors: ``test_serve_worker``.)

Tests that reach the catalog run on both backends (``client``, ``backend``); those whose
requests are refused before it use a catalog folder (``folder_client``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import api.errors
from api.settings import resolve_config
from matcher.errors import ConfigError, SiammatchError
from tests.api.http_helpers import b64, png_bytes, upload
from tests.helpers import png_header

README = Path(__file__).resolve().parents[2] / "README.md"


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def _strip(width: int, height: int) -> bytes:
    return png_bytes(np.full((height, width, 3), 200, np.uint8))


@pytest.mark.parametrize(
    "width, height, status, code",
    [
        (5000, 1, 400, "image_too_thin"),
        (1, 5000, 400, "image_too_thin"),
        (300, 2, 400, "image_too_thin"),  # 150:1, a few hundred pixels
        (50_000, 10, 413, "image_too_large"),  # 500 k pixels, but a side over 12,000
        (1, 20_000, 413, "image_too_large"),
    ],
)
def test_thin_and_long_images_are_refused_on_every_route(
    client, pictures, width, height, status, code
):
    strip = _strip(width, height)
    scene, product = pictures.scene_png, pictures.product_png
    requests = {
        "match reference": ("/v1/match", {"reference": strip, "scene": scene}),
        "match scene": ("/v1/match", {"reference": product, "scene": strip}),
        "catalog image": ("/v1/catalog", {"image": strip, "id": "strip"}),
        "search scene": ("/v1/search", {"scene": strip}),
    }
    for what, (route, fields) in requests.items():
        form = {k: upload(v) if isinstance(v, bytes) else v for k, v in fields.items()}
        message = _error(client.post(route, data=form), status, code)
        assert f"{width}x{height}" in message, what
        as_json = {k: b64(v) if isinstance(v, bytes) else v for k, v in fields.items()}
        _error(client.post(route, json=as_json), status, code)
    assert client.get("/v1/catalog").get_json()["total"] == 0


def test_a_thin_product_box_cannot_break_search(make_app, backend, pictures):
    """The original failure: one thin catalog product made every /v1/search a 500 (the
    default recipe's box voting divided 0 by 0). A thin *box* in a normal photo is still
    accepted; searching with it in the catalog must keep working."""
    client = make_app(catalog=True, RECIPE="siammask_small").test_client()
    added = client.post(
        "/v1/catalog",
        data={"id": "thin", "image": upload(pictures.product_png), "box": "0,40,80,41"},
    )
    assert added.status_code == 201, added.get_json()
    other = client.post("/v1/catalog", data={"id": "coffee", "image": upload(pictures.product_png)})
    assert other.status_code == 201
    for _ in range(2):
        found = client.post("/v1/search", data={"scene": upload(pictures.scene_png), "k": "5"})
        assert found.status_code == 200, found.get_json()
        for hit in found.get_json()["results"]:
            assert all(np.isfinite(inst["box"]).all() for inst in hit["instances"])
    match = client.post(
        "/v1/match", data={"reference_id": "thin", "scene": upload(pictures.scene_png)}
    )
    assert match.status_code == 200, match.get_json()


def _nested_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("route", ["/v1/match", "/v1/catalog", "/v1/search"])
@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        _nested_text(1_000),
        '{"scene": "AAAA", "k": ' + "[" * 5_000 + "]" * 5_000 + "}",
        '{"id": "p", "image": "AAAA", "metadata": ' + _nested_text(40) + "}",
    ],
    ids=["arrays-100000", "objects-1000", "field-5000", "metadata-40"],
)
def test_deeply_nested_json_is_a_400(folder_client, route, body):
    response = folder_client.post(route, data=body, content_type="application/json")
    assert "nested more than" in _error(response, 400, "malformed_json")


def test_nested_metadata_in_a_form_field_and_at_the_limit(client, pictures):
    deep = {"id": "deep", "image": upload(pictures.product_png), "metadata": _nested_text(2_000)}
    assert "nested" in _error(client.post("/v1/catalog", data=deep), 400, "malformed_json")
    over = {"id": "over", "image": upload(pictures.product_png), "metadata": _nested_text(33)}
    _error(client.post("/v1/catalog", data=over), 400, "malformed_json")
    at_limit = json.loads(_nested_text(31))  # 32 levels with the metadata object itself
    added = client.post(
        "/v1/catalog", json={"id": "ok", "image": b64(pictures.product_png), "metadata": at_limit}
    )
    assert added.status_code == 201, added.get_json()
    listed = client.get("/v1/catalog").get_json()
    assert listed["total"] == 1 and listed["products"][0]["metadata"] == at_limit


def test_decompression_bomb_quotes_the_configured_limit(folder_client, make_app, pictures):
    bomb = upload(png_header(20_000, 10_000))  # 200 M pixels: PIL refuses it on opening
    message = _error(folder_client.post("/v1/search", data={"scene": bomb}), 413, "image_too_large")
    assert "limit of 25000000 pixels" in message and "178956970" not in message
    small = make_app(MAX_PIXELS=5_000).test_client()
    form = {"reference": upload(pictures.product_png), "scene": upload(pictures.scene_png)}
    assert "limit of 5000" in _error(small.post("/v1/match", data=form), 413, "image_too_large")


def test_image_limits_are_configurable(make_app, pictures, monkeypatch):
    form = {"reference": upload(pictures.product_png), "scene": upload(pictures.scene_png)}
    tight = make_app(MAX_ASPECT_RATIO=1.2).test_client()  # the 260x200 scene is 1.3:1
    assert "limit of 1.2:1" in _error(tight.post("/v1/match", data=form), 400, "image_too_thin")
    short = make_app(MAX_IMAGE_SIDE=100).test_client()
    form = {"reference": upload(pictures.product_png), "scene": upload(pictures.scene_png)}
    assert "100 pixels" in _error(short.post("/v1/match", data=form), 413, "image_too_large")
    for bad in (
        {"MAX_ASPECT_RATIO": 0.5},
        {"MAX_ASPECT_RATIO": float("inf")},
        {"MAX_IMAGE_SIDE": 0},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve_config(bad, environ={})
    env = {"SIAMMATCH_MAX_ASPECT_RATIO": "7.5", "SIAMMATCH_MAX_IMAGE_SIDE": "4000"}
    config = resolve_config({}, environ=env)
    assert config["MAX_ASPECT_RATIO"] == 7.5 and config["MAX_IMAGE_SIDE"] == 4000
    defaults = resolve_config({}, environ={})
    assert defaults["MAX_ASPECT_RATIO"] == 20.0 and defaults["MAX_IMAGE_SIDE"] == 12_000


def test_the_catalog_accepts_what_the_service_limits_accept(make_app, backend):
    """A service configured wider than the library's defaults (20:1) stores what its own
    checks let through: the catalog is given the service's limits, not its defaults."""
    client = make_app(catalog=True, MAX_ASPECT_RATIO=30.0).test_client()
    strip = png_bytes(np.tile(np.arange(250, dtype=np.uint8)[None, :, None], (10, 1, 3)))
    added = client.post("/v1/catalog", data={"id": "strip", "image": upload(strip)})
    assert added.status_code == 201, added.get_json()  # 25:1
    narrow = make_app(catalog=True).test_client()
    _error(
        narrow.post("/v1/catalog", data={"id": "s", "image": upload(strip)}), 400, "image_too_thin"
    )


def test_every_response_says_nosniff(client, pictures):
    client.post("/v1/catalog", data={"id": "p", "image": upload(pictures.product_png)})
    responses = [
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/openapi.json"),
        client.get("/"),
        client.get("/v1/catalog/p/image"),
        client.get("/no/such/page"),
        client.post("/v1/match", data={}),
        client.get("/v1/match"),
    ]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.status


def test_openapi_corrections(make_app, backend, pictures):
    app = make_app(catalog=True, API_KEY="k")
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    assert {"ApiKey": []} in spec["security"]
    for path, item in spec["paths"].items():
        keyed = path.startswith("/v1/")
        for verb, operation in item.items():
            assert (operation.get("security") != []) == keyed, (path, verb)
    schemas = spec["components"]["schemas"]
    assert schemas["Product"]["properties"]["created_at"]["type"] == "number"
    assert schemas["ProductPage"]["properties"]["total"]["type"] == "integer"
    headers = {"X-API-Key": "k"}
    client.post(
        "/v1/catalog", data={"id": "p", "image": upload(pictures.product_png)}, headers=headers
    )
    page = client.get("/v1/catalog", headers=headers).get_json()
    assert set(page) == set(schemas["ProductPage"]["properties"])
    assert set(page["products"][0]) == set(schemas["Product"]["properties"])
    assert isinstance(page["products"][0]["created_at"], float)
    assert client.get("/metrics").status_code == 200  # no key needed, as documented


def _readme_error_table() -> dict[int, set[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("| status | `code`") :]
    table: dict[int, set[str]] = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[int(cells[0])] = set(re.findall(r"`([a-z_]+)`", cells[1]))
    return table


def test_readme_error_table_lists_every_error():
    table = _readme_error_table()
    for cls, status in api.errors.STATUS.items():
        if cls is not SiammatchError:  # the root: only the fallback of its subclasses
            assert cls.code in table.get(status, set()), (cls.__name__, status, cls.code)
    # Werkzeug's errors (Flask) and gunicorn's (the worker, api/gunicorn_errors.py).
    for status, code in [
        (400, "bad_request"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (408, "request_timeout"),
        (411, "length_required"),
        (413, "request_entity_too_large"),
        (414, "uri_too_long"),
        (417, "expectation_failed"),
        (431, "request_header_fields_too_large"),
        (500, "internal_error"),
        (500, "timeout"),
        (501, "not_implemented"),
    ]:
        assert code in table.get(status, set()), (status, code)
