"""``POST /v1/search``: retrieval and batched verification over the catalog, on both
catalog backends (``client``); the request checks that refuse a search first use a folder."""

from __future__ import annotations

import pytest

from index.search import STAGES
from matcher.structures import Instance
from tests.api.http_helpers import b64, png_bytes, upload
from tests.helpers import iou, product_image


@pytest.fixture
def stocked(client, pictures):
    """The client's catalog with the scene's product and two others."""
    for pid, image in (
        ("coffee", pictures.product_png),
        ("astronaut", pictures.other_png),
        ("rocket", png_bytes(product_image("rocket"))),
    ):
        response = client.post("/v1/catalog", data={"id": pid, "image": upload(image)})
        assert response.status_code == 201
    return client


def test_search_finds_the_pasted_product(stocked, pictures):
    response = stocked.post("/v1/search", data={"scene": upload(pictures.scene_png), "k": "2"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scene_size"] == {"height": 200, "width": 260}
    assert 1 <= len(body["results"]) <= 2
    best = body["results"][0]
    assert best["product_id"] == "coffee"
    assert set(best) == {"product_id", "score", "retrieval_score", "metadata", "instances"}
    instance = Instance.from_dict(best["instances"][0])
    assert iou(instance.box, pictures.box) >= 0.8
    assert best["score"] == pytest.approx(instance.score, abs=1e-6)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_with_json_body(stocked, pictures):
    response = stocked.post("/v1/search", json={"scene": b64(pictures.scene_png), "k": 1})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["product_id"] for r in results] == ["coffee"]


def test_search_threshold_filters(stocked, pictures):
    body = stocked.post(
        "/v1/search", data={"scene": upload(pictures.scene_png), "threshold": "0.9999"}
    ).get_json()
    assert body["results"] == []


def test_search_on_empty_catalog_finds_nothing(client, pictures):
    response = client.post("/v1/search", data={"scene": upload(pictures.scene_png)})
    assert response.status_code == 200
    assert response.get_json()["results"] == []


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"k": "0"}, "invalid_argument"),
        ({"k": "21"}, "invalid_argument"),  # over MAX_K
        ({"k": "lots"}, "invalid_argument"),
        ({"threshold": "-1"}, "invalid_argument"),
        ({"scene": None}, "missing_field"),
        ({"scene": upload(b"not an image")}, "invalid_image"),
    ],
)
def test_search_mistakes(folder_client, pictures, fields, code):
    data = {"scene": upload(pictures.scene_png), **fields}
    response = folder_client.post(
        "/v1/search", data={k: v for k, v in data.items() if v is not None}
    )
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == code


def test_search_only_accepts_post(make_app):
    assert make_app().test_client().get("/v1/search").status_code == 405


def test_search_reports_its_stage_times(stocked, pictures):
    """A ``Server-Timing`` header with every stage and the total, and the same stages in the
    ``siammatch_search_stage_seconds`` histogram of ``/metrics``."""
    response = stocked.post("/v1/search", data={"scene": upload(pictures.scene_png), "k": "2"})
    assert response.status_code == 200
    timing = {}
    for entry in response.headers["Server-Timing"].split(","):
        name, _, dur = entry.strip().partition(";dur=")
        timing[name] = float(dur)
    assert list(timing) == ["parse", *STAGES, "total"]
    assert all(value >= 0 for value in timing.values())
    assert timing["verify"] > 0
    stages = sum(timing[s] for s in ("parse", *STAGES))
    assert stages <= timing["total"] + 0.1 * len(timing)  # each rounded to 0.1 ms
    assert response.get_json()["elapsed_ms"] <= timing["total"]
    text = stocked.get("/metrics").get_data(as_text=True)
    for stage in ("parse", *STAGES):
        assert f'siammatch_search_stage_seconds_count{{stage="{stage}"}} 1.0' in text
