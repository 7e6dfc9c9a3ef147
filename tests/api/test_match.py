"""``POST /v1/match``: results in both body formats, and a 4xx JSON for every mistake."""

from __future__ import annotations

import json

import pytest

from matcher.checkpoints.io import save_checkpoint
from matcher.structures import Instance
from tests.api.http_helpers import b64, png_bytes, upload
from tests.helpers import TEST_RECIPES, iou, rpn_template_matcher, synthetic_shelf


@pytest.fixture
def plain_client(make_app):
    """An app without a catalog (match only)."""
    return make_app().test_client()


def form(pictures, **fields):
    data = {
        "reference": upload(pictures.product_png, "ref.png"),
        "scene": upload(pictures.scene_png, "scene.png"),
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_multipart_match_finds_the_product(plain_client, pictures):
    response = plain_client.post("/v1/match", data=form(pictures))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recipe"] == "siamfc_pixels"
    assert body["scene_size"] == {"height": 200, "width": 260}
    assert body["instances"], body
    best = Instance.from_dict(body["instances"][0])
    assert iou(best.box, pictures.box) >= 0.8
    scores = [inst["score"] for inst in body["instances"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["instances"][0]) == {"box", "score", "mask", "polygon"}
    assert body["elapsed_ms"] > 0


def test_the_default_service_matches_with_the_shipped_matcher(make_app, tmp_path):
    """What `make serve` runs: no recipe configured -> api.defaults.DEFAULT_RECIPE, with the
    shipped weights and verifier, boxes and masks."""
    from api.defaults import DEFAULT_RECIPE

    ref, scene, boxes = synthetic_shelf(tmp_path / "synth")
    client = make_app(RECIPE=None).test_client()
    data = {
        "reference": upload(ref.read_bytes(), "ref.png"),
        "scene": upload(scene.read_bytes(), "scene.jpg"),
    }
    response = client.post("/v1/match", data=data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recipe"] == DEFAULT_RECIPE
    best = Instance.from_dict(body["instances"][0])
    assert max(iou(best.box, b) for b in boxes) >= 0.5
    assert best.mask is not None and best.mask.any()


def test_json_body_with_base64_and_data_url(plain_client, pictures):
    payload = {
        "reference": "data:image/png;base64," + b64(pictures.product_png),
        "scene": b64(pictures.scene_png),
        "reference_box": [0, 0, 80, 80],
        "threshold": 0.5,
        "max_instances": 2,
    }
    response = plain_client.post("/v1/match", json=payload)
    assert response.status_code == 200, response.get_json()
    instances = response.get_json()["instances"]
    assert 1 <= len(instances) <= 2
    assert iou(instances[0]["box"], pictures.box) >= 0.8


def test_reference_box_selects_the_product_in_a_larger_photo(plain_client, pictures):
    # The reference is the scene itself with the product's box: it must find it again.
    box = ",".join(str(v) for v in pictures.box)
    data = form(pictures, reference_box=box)
    data["reference"] = upload(pictures.scene_png, "scene-as-ref.png")
    response = plain_client.post("/v1/match", data=data)
    assert response.status_code == 200, response.get_json()
    assert iou(response.get_json()["instances"][0]["box"], pictures.box) >= 0.8


def test_threshold_and_max_instances_are_applied(plain_client, pictures):
    loose = plain_client.post(
        "/v1/match", data=form(pictures, threshold="0", max_instances="3")
    ).get_json()
    assert len(loose["instances"]) == 3
    default = plain_client.post("/v1/match", data=form(pictures, max_instances="3")).get_json()
    assert len(default["instances"]) < 3  # the recipe's own threshold (0.83) drops some
    assert min(i["score"] for i in loose["instances"]) < 0.83
    strict = plain_client.post("/v1/match", data=form(pictures, threshold="0.999")).get_json()
    assert strict["instances"] == []


def test_default_threshold_from_config(make_app, pictures):
    client = make_app(DEFAULT_THRESHOLD=0.0, MAX_INSTANCES=4).test_client()
    body = client.post("/v1/match", data=form(pictures, max_instances="4")).get_json()
    assert len(body["instances"]) == 4


def test_extra_recipe_with_weights_can_be_chosen(make_app, pictures, tmp_path):
    matcher = rpn_template_matcher()
    weights = save_checkpoint(tmp_path / "rpn.pth", matcher.net, matcher.recipe.to_dict())
    client = make_app(
        EXTRA_RECIPES={str(TEST_RECIPES / "pixels_rpn.yaml"): str(weights)}
    ).test_client()
    ready = client.get("/readyz").get_json()
    assert ready["recipes"] == sorted(["siamfc_pixels", matcher.name])
    response = client.post("/v1/match", data=form(pictures, recipe=matcher.name))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recipe"] == matcher.name
    assert iou(body["instances"][0]["box"], pictures.box) >= 0.6


def _error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in body["error"]["message"]
    return body["error"]["message"]


@pytest.mark.parametrize(
    "change, status, code, words",
    [
        ({"scene": None}, 400, "missing_field", "'scene' is required"),
        ({"reference": None}, 400, "missing_field", "'reference' is required"),
        ({"scene": upload(b"", "empty.png")}, 400, "invalid_image", "empty"),
        ({"reference": upload(b"hello, not an image", "a.txt")}, 400, "invalid_image", "not a"),
        ({"scene": upload(b"\x89PNG\r\n\x1a\nbroken", "b.png")}, 400, "invalid_image", ""),
        ({"reference_box": "1,2,3"}, 400, "invalid_box", "four numbers"),
        ({"reference_box": "10,10,10,50"}, 400, "invalid_box", "zero or negative area"),
        ({"reference_box": "0,0,900,50"}, 400, "invalid_box", "outside"),
        ({"reference_box": "a,b,c,d"}, 400, "invalid_box", "four numbers"),
        ({"recipe": "nope"}, 400, "unknown_component", "siamfc_pixels"),
        ({"threshold": "2"}, 400, "invalid_argument", "threshold"),
        ({"threshold": "abc"}, 400, "invalid_argument", "threshold"),
        ({"threshold": "nan"}, 400, "invalid_argument", "threshold"),
        ({"max_instances": "0"}, 400, "invalid_argument", "max_instances"),
        ({"max_instances": "1000"}, 400, "invalid_argument", "max_instances"),
        ({"max_instances": "two"}, 400, "invalid_argument", "max_instances"),
        ({"max_instances": "1.5"}, 400, "invalid_argument", "max_instances"),
        ({"reference": "text instead of a file"}, 400, "bad_request", "file part"),
    ],
)
def test_multipart_mistakes(plain_client, pictures, change, status, code, words):
    data = form(pictures)
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    message = _error(plain_client.post("/v1/match", data=data), status, code)
    assert words in message


def test_truncated_png_is_a_400(plain_client, pictures):
    data = form(pictures)
    data["scene"] = upload(pictures.scene_png[: len(pictures.scene_png) // 2], "cut.png")
    _error(plain_client.post("/v1/match", data=data), 400, "invalid_image")


@pytest.mark.parametrize(
    "body, code, words",
    [
        ("{not json", "malformed_json", "not valid JSON"),
        ("[1, 2]", "malformed_json", "object"),
        ('{"reference": "%%%not-base64%%%", "scene": "AAAA"}', "invalid_base64", "base64"),
        ('{"reference": 12, "scene": "AAAA"}', "invalid_base64", "base64 string"),
        ('{"reference": ""}', "invalid_image", "empty"),
        ('{"reference": "AAAA"}', "missing_field", "'scene' is required"),
        ('{"scene": "AAAA", "reference": "AAAA", "threshold": true}', "invalid_argument", ""),
        ('{"scene": "AAAA", "reference": "AAAA", "reference_box": [1, 2]}', "invalid_box", ""),
    ],
)
def test_json_mistakes(plain_client, body, code, words):
    response = plain_client.post("/v1/match", data=body, content_type="application/json")
    assert words in _error(response, 400, code)


def test_base64_of_a_non_image_is_invalid_image(plain_client, pictures):
    payload = {"reference": b64(b"just some text"), "scene": b64(pictures.scene_png)}
    _error(plain_client.post("/v1/match", json=payload), 400, "invalid_image")


def test_empty_post_reports_the_missing_fields(plain_client):
    _error(plain_client.post("/v1/match"), 400, "missing_field")


def test_unsupported_body_type_is_415(plain_client):
    response = plain_client.post("/v1/match", data=b"raw bytes", content_type="text/plain")
    _error(response, 415, "unsupported_media_type")


def test_oversized_upload_is_413_json(make_app, pictures):
    client = make_app(MAX_CONTENT_LENGTH=20_000).test_client()
    assert len(pictures.scene_png) > 20_000
    response = client.post("/v1/match", data=form(pictures))
    _error(response, 413, "request_entity_too_large")


def test_too_many_pixels_is_413(make_app, pictures):
    client = make_app(MAX_PIXELS=200 * 200).test_client()
    message = _error(client.post("/v1/match", data=form(pictures)), 413, "image_too_large")
    assert "pixels" in message


def test_wrong_method_is_405_json(plain_client):
    response = plain_client.get("/v1/match")
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_unknown_v1_route_is_404_json(plain_client):
    _error(plain_client.get("/v1/nothing-here"), 404, "not_found")
    _error(plain_client.post("/v1/match/extra"), 404, "not_found")


def test_reference_id_without_catalog_is_503(plain_client, pictures):
    data = form(pictures, reference_id="p1")
    data.pop("reference")
    _error(plain_client.post("/v1/match", data=data), 503, "catalog_unavailable")


def test_bad_request_costs_no_model_time(make_app, pictures, monkeypatch):
    app = make_app()
    matcher = app.extensions["siammatch"].matcher
    calls = []
    monkeypatch.setattr(matcher, "match", lambda *a, **k: calls.append(1))
    response = app.test_client().post("/v1/match", data=form(pictures, threshold="7"))
    assert response.status_code == 400
    assert calls == []


def test_json_and_multipart_give_the_same_result(plain_client, pictures):
    a = plain_client.post("/v1/match", data=form(pictures)).get_json()
    b = plain_client.post(
        "/v1/match",
        data=json.dumps({"reference": b64(pictures.product_png), "scene": b64(pictures.scene_png)}),
        content_type="application/json",
    ).get_json()
    assert a["instances"] == b["instances"]
    assert png_bytes(pictures.product) == pictures.product_png


def test_a_classical_baseline_can_be_the_served_matcher(make_app):
    from tests.helpers import clutter_scene, paste, product_image

    product = product_image("coffee")  # 200x200, textured enough for SIFT
    box = (150, 90, 330, 270)
    scene = paste(clutter_scene(360, 480, seed=4), product, box)
    client = make_app(RECIPE="baseline_sift").test_client()
    data = {
        "reference": upload(png_bytes(product), "ref.png"),
        "scene": upload(png_bytes(scene), "scene.png"),
    }
    response = client.post("/v1/match", data=data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["recipe"] == "baseline_sift"
    assert body["instances"], body
    best = Instance.from_dict(body["instances"][0])
    assert iou(best.box, box) >= 0.5
