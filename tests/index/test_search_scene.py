"""Scene search: retrieval over scene views, one batched verification, re-ranking."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import matcher
from index.catalog import Catalog
from index.search import STAGES, SceneHit, scene_views, search_scene
from matcher.errors import InvalidArgumentError
from tests.conftest import BACKENDS
from tests.helpers import clutter_scene, iou, paste, product_image
from tests.index.conftest import new_location

PRODUCTS = ("astronaut", "coffee", "rocket", "chelsea")


@pytest.fixture(scope="module", params=BACKENDS)
def setup(request, tmp_path_factory):
    """A catalog of the four products on each backend, shared by the module's tests."""
    m = matcher.load("siamfc_pixels")
    root = tmp_path_factory.mktemp("scene")
    location = new_location(request, request.param, root / "cat")
    cat = Catalog(location, matcher=m, index_cache=root / "index-cache")
    for name in PRODUCTS:
        cat.add(name, product_image(name), metadata={"name": name.title()})
    yield cat, m
    cat.close()


def test_the_pasted_product_ranks_first(setup, monkeypatch):
    cat, m = setup
    box = (250, 120, 350, 220)
    scene = paste(clutter_scene(360, 480, seed=3), product_image("rocket"), box)
    calls = []
    original = m.match_many

    def counting(references, *args, **kwargs):
        calls.append((len(references), kwargs.get("catalog_search")))
        return original(references, *args, **kwargs)

    monkeypatch.setattr(m, "match_many", counting)
    hits = search_scene(cat, m, scene, k=3, candidates=4)
    # every candidate verified in one batched call, with the recipe's catalog-search settings
    assert calls == [(4, True)]
    assert hits and isinstance(hits[0], SceneHit)
    best = hits[0]
    assert best.product_id == "rocket"
    assert best.metadata == {"name": "Rocket"}
    assert iou(best.instances[0].box, box) >= 0.7
    assert best.score == best.instances[0].score
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    data = json.loads(json.dumps([h.to_dict() for h in hits]))
    assert data[0]["product_id"] == "rocket" and len(data[0]["instances"][0]["box"]) == 4
    assert matcher.Instance.from_dict(data[0]["instances"][0]).box == pytest.approx(
        best.instances[0].box, abs=1e-3
    )


def test_two_products_in_one_scene(setup):
    cat, m = setup
    scene = clutter_scene(400, 560, seed=5)
    scene = paste(scene, product_image("coffee"), (40, 60, 150, 170))
    scene = paste(scene, product_image("chelsea"), (380, 220, 500, 340))
    hits = search_scene(cat, m, scene, k=4, candidates=4)
    found = {h.product_id: h for h in hits}
    assert {"coffee", "chelsea"} <= set(found)
    assert iou(found["coffee"].instances[0].box, (40, 60, 150, 170)) >= 0.7
    assert iou(found["chelsea"].instances[0].box, (380, 220, 500, 340)) >= 0.7
    assert set(list(found)[:2]) == {"coffee", "chelsea"}


def test_scene_views_cover_the_scene_at_every_size():
    scene = np.zeros((100, 160, 3), np.uint8)
    views = scene_views(scene, windows=(0.5, 1.0), overlap=0.5)
    assert views[0] is scene
    # 50 px windows at most 25 px apart, first and last flush with the edges: 3 rows (0, 25,
    # 50) x 6 columns (22 px apart); then 100 px windows: 1 row x 3 columns (0, 30, 60)
    sizes = [v.shape for v in views[1:]]
    assert sizes == [(50, 50, 3)] * 3 * 6 + [(100, 100, 3)] * 3
    small = views[1 : 1 + 18]
    for v in small:  # views share the scene's memory: mark what they cover
        v += 1
    assert scene.min() >= 1  # every pixel is in a window of the smaller size
    assert scene[50, 80].item(0) == 4  # rows 25 and 50 x columns 44 and 66
    assert len(scene_views(scene, windows=())) == 1
    default = scene_views(np.zeros((480, 640, 3), np.uint8))
    assert len(default) == 1 + 7 * 10 + 5 * 7 + 3 * 5  # the docstring's 121 views
    with pytest.raises(InvalidArgumentError):
        scene_views(scene, windows=(0.0,))
    with pytest.raises(InvalidArgumentError):
        scene_views(scene, windows=(0.5,), overlap=0.95)
    with pytest.raises(InvalidArgumentError, match="at most 1000"):  # 9,802 views
        scene_views(np.zeros((400, 400, 3), np.uint8), windows=(0.02,), overlap=0.5)


def test_argument_checks(setup):
    cat, m = setup
    scene = clutter_scene(120, 160, seed=1)
    for kwargs in (
        {"k": 0},
        {"candidates": 0},
        {"k": 5, "candidates": 3},
        {"windows": (1.5,)},
    ):
        with pytest.raises(InvalidArgumentError):
            search_scene(cat, m, scene, **kwargs)
    with pytest.raises(InvalidArgumentError):
        search_scene(cat, m, scene, score_threshold=2.0)


def test_empty_catalog(catalog_location):
    m = matcher.load("siamfc_pixels")
    with Catalog(catalog_location, matcher=m) as cat:
        assert search_scene(cat, m, clutter_scene(120, 160, seed=1)) == []


def test_the_default_matcher_finds_a_catalog_product_on_a_synthetic_shelf(
    tmp_path, catalog_location
):
    """The shipped matcher (verified by the shipped embedder) behind a catalog of the
    generator's products, none of them seen in training: the scene's most visible product
    is among the hits with a box on one of its instances."""
    from api.defaults import DEFAULT_RECIPE
    from tests.helpers import synthetic_shelf

    ref, scene, boxes = synthetic_shelf(tmp_path / "synth")
    m = matcher.load(DEFAULT_RECIPE)
    document = json.loads((ref.parent.parent / "annotations.json").read_text())
    with Catalog(catalog_location, matcher=m) as cat:
        for product in document["products"]:
            cat.add(str(product["id"]), str(ref.parent.parent / product["catalog"]))
        hits = search_scene(cat, m, str(scene), k=5)
    target = next(p for p in document["products"] if ref.name == p["catalog"].split("/")[-1])
    found = [h for h in hits if h.product_id == str(target["id"])]
    assert found, [h.product_id for h in hits]
    assert max(iou(found[0].instances[0].box, b) for b in boxes) >= 0.5
    assert found[0].instances[0].mask is not None


def test_timings_cover_every_stage(setup):
    cat, m = setup
    scene = paste(clutter_scene(360, 480, seed=3), product_image("rocket"), (250, 120, 350, 220))
    timings: dict[str, float] = {"stale": 1.0}
    start = time.perf_counter()
    hits = search_scene(cat, m, scene, k=2, candidates=4, timings=timings)
    total = time.perf_counter() - start
    assert hits
    assert set(STAGES) <= set(timings)
    assert all(timings[s] >= 0 for s in STAGES)
    assert timings["embed"] > 0 and timings["verify"] > 0
    assert sum(timings[s] for s in STAGES) <= total


def test_template_features_of_the_candidates_come_in_two_queries(setup, monkeypatch):
    """One query for the candidates' seqs and keys, one for the stored features of those
    not in memory (none when all are), instead of one query per candidate."""
    cat, m = setup
    cat._templates.clear()
    calls = []
    store = cat._templates.store
    for name in ("template_keys", "template_blobs", "template", "get"):
        original = getattr(store, name)
        monkeypatch.setattr(
            store, name, lambda *a, _f=original, _n=name, **kw: calls.append(_n) or _f(*a, **kw)
        )
    feats = cat.template_features_many(["rocket", "gone", "coffee"], matcher=m)
    assert set(feats) == {"rocket", "coffee"}  # unknown ids are left out
    assert calls == ["template_keys", "template_blobs"]
    calls.clear()
    again = cat.template_features_many(["coffee", "rocket"], matcher=m)
    assert calls == ["template_keys"]  # all in memory: no features read
    assert again["rocket"] is feats["rocket"] is cat.template_features("rocket", matcher=m)
