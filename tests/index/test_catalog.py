"""The catalog's products: add / get / delete / list / search, errors that leave nothing
behind, metadata limits, and the cached template features of the references (the index's
persistence, recovery, training and re-embedding are in ``test_catalog_index.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.catalog import Catalog
from index.products import (
    MAX_METADATA_DEPTH,
    Hit,
    Product,
    json_depth,
    parse_metadata,
    validate_metadata,
)
from index.templates import features_to_bytes
from matcher.errors import (
    CatalogError,
    DuplicateProductError,
    ImageTooLargeError,
    ImageTooThinError,
    InvalidArgumentError,
    InvalidBoxError,
    InvalidImageError,
    ProductNotFoundError,
)
from tests.index.conftest import assert_consistent, block_image, row_counts


def state(cat: Catalog, location: str) -> tuple:
    """Everything a failed write must leave unchanged (``location``: the catalog's)."""
    counts = row_counts(location, ("products", "vectors", "images", "templates", "changes"))
    return counts, cat.verify()["indexed"]


def test_add_get_search_delete(catalog):
    image = block_image("p1", size=120)
    product = catalog.add(
        "p1", image, metadata={"name": "Tea", "price": 3.5}, box=(10, 10, 110, 100)
    )
    assert isinstance(product, Product)
    assert product.box == (10.0, 10.0, 110.0, 100.0)
    assert product.image_size == (120, 120)
    catalog.add("p2", block_image("p2"))
    got = catalog.get("p1")
    assert got.metadata == {"name": "Tea", "price": 3.5}
    assert got.box == product.box and got.created_at == product.created_at
    np.testing.assert_array_equal(got.image(), image)
    assert json.loads(json.dumps(got.to_dict()))["product_id"] == "p1"
    assert "p1" in catalog and "nope" not in catalog and 5 not in catalog
    assert len(catalog) == 2
    hits = catalog.search(image[10:100, 10:110], k=5)
    assert [type(h) for h in hits] == [Hit, Hit]
    assert hits[0].product_id == "p1" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    catalog.delete("p1")
    assert "p1" not in catalog
    with pytest.raises(ProductNotFoundError):
        catalog.get("p1")
    assert [h.product_id for h in catalog.search(image, k=5)] == ["p2"]
    assert_consistent(catalog, {"p2"})


def test_unknown_and_duplicate_ids(catalog):
    catalog.add("a", block_image("a"))
    with pytest.raises(DuplicateProductError):
        catalog.add("a", block_image("b"))
    with pytest.raises(ProductNotFoundError) as err:
        catalog.get("zzz")
    assert isinstance(err.value, KeyError) and str(err.value) == "no product 'zzz' in the catalog"
    with pytest.raises(ProductNotFoundError):
        catalog.delete("zzz")
    with pytest.raises(InvalidArgumentError):
        catalog.get(12)
    assert_consistent(catalog, {"a"})


def _nested(depth: int) -> dict:
    """Metadata nested ``depth`` levels deep (the object itself is one)."""
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return {"a": value}


def test_metadata_depth_limit():
    assert json_depth({"a": [1, {"b": []}]}, limit=10) == 4
    assert json_depth("text", limit=10) == 0
    assert json_depth(_nested(100_000), limit=32) == 33  # counted without recursion
    assert validate_metadata(_nested(MAX_METADATA_DEPTH)).startswith('{"a":[[')
    for text in ('{"a":' * 40 + "1" + "}" * 40, "[" * 100_000 + "]" * 100_000):
        with pytest.raises(InvalidArgumentError, match="nested"):
            parse_metadata(text)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"product_id": ""}, InvalidArgumentError),
        ({"product_id": "has space"}, InvalidArgumentError),
        ({"product_id": "../etc"}, InvalidArgumentError),
        ({"product_id": "x" * 129}, InvalidArgumentError),
        ({"product_id": 7}, InvalidArgumentError),
        ({"metadata": ["not", "an", "object"]}, InvalidArgumentError),
        ({"metadata": {"price": float("nan")}}, InvalidArgumentError),
        ({"metadata": {"when": object()}}, InvalidArgumentError),
        ({"metadata": {1: "int key"}}, InvalidArgumentError),
        ({"metadata": {"blob": "x" * 70_000}}, InvalidArgumentError),
        ({"metadata": _nested(33)}, InvalidArgumentError),
        ({"metadata": _nested(5000)}, InvalidArgumentError),  # json.dumps would recurse
        ({"metadata": {"note": "a\x00b"}}, InvalidArgumentError),  # JSONB refuses NUL
        ({"metadata": {"k\x00": 1}}, InvalidArgumentError),
        ({"metadata": {"a": [{"b": "\x00"}]}}, InvalidArgumentError),
        ({"metadata": {"lone": "\ud800"}}, InvalidArgumentError),  # not encodable as UTF-8
        ({"image": b"\x89PNG\r\n\x1a\n corrupt"}, InvalidImageError),
        ({"image": np.zeros((1, 5000, 3), np.uint8)}, ImageTooThinError),
        ({"image": np.zeros((30_000, 2, 3), np.uint8)}, ImageTooLargeError),
        ({"image": np.zeros((4, 4), np.float32) + 3.0}, InvalidImageError),
        ({"image": "/no/such/file.png"}, InvalidImageError),
        ({"box": (50, 50, 40, 80)}, InvalidBoxError),
        ({"box": (0, 0, 500, 500)}, InvalidBoxError),
        ({"box": (0, 0, 10)}, InvalidBoxError),
        ({"box": (0, 0, float("inf"), 10)}, InvalidBoxError),
        ({"product_id": "taken"}, DuplicateProductError),
    ],
)
def test_failed_add_leaves_nothing_behind(catalog, catalog_location, kwargs, error):
    catalog.add("taken", block_image("taken"))
    before = state(catalog, catalog_location)
    args = {"product_id": "new", "image": block_image("new"), "metadata": {"k": 1}, "box": None}
    args.update(kwargs)
    with pytest.raises(error):
        catalog.add(args.pop("product_id"), args.pop("image"), **args)
    assert state(catalog, catalog_location) == before
    assert_consistent(catalog, {"taken"})


def test_add_many_checks_everything_first(catalog):
    items = [(f"m{i}", block_image(f"m{i}"), {"i": i}, None) for i in range(10)]
    bad = [*items[:5], ("m5", b"garbage", None, None), *items[6:]]
    with pytest.raises(InvalidImageError):
        catalog.add_many(bad)
    with pytest.raises(InvalidArgumentError, match="more than once"):
        catalog.add_many([*items, items[0]])
    with pytest.raises(InvalidArgumentError):
        catalog.add_many([("x", block_image("x"))])
    assert len(catalog) == 0
    assert catalog.add_many(items, chunk_size=3) == 10
    assert catalog.get("m7").metadata == {"i": 7}
    with pytest.raises(DuplicateProductError):
        catalog.add_many([("new", block_image("new"), None, None), items[2]])
    assert "new" not in catalog
    assert_consistent(catalog, {f"m{i}" for i in range(10)})


def test_list_pagination_is_stable(catalog):
    ids = [f"id{i:02d}" for i in range(23)]
    catalog.add_many([(i, block_image(i, size=24), None, None) for i in reversed(ids)])
    page, cursor = catalog.list(limit=5)
    assert [p.product_id for p in page] == ids[:5] and cursor == "id04"
    seen = [p.product_id for p in page]
    catalog.add("id00a", block_image("id00a", size=24))  # sorts before the cursor
    catalog.delete("id10")
    while cursor is not None:
        page, cursor = catalog.list(cursor=cursor, limit=5)
        seen += [p.product_id for p in page]
    assert seen == [i for i in ids if i != "id10"]
    assert catalog.list(limit=1000)[1] is None
    for bad in (0, 1001, "5", True):
        with pytest.raises(InvalidArgumentError):
            catalog.list(limit=bad)
    with pytest.raises(InvalidArgumentError):
        catalog.list(cursor=3)


def test_search_vectors_checks_and_shapes(catalog):
    catalog.add_many([(f"v{i}", block_image(f"v{i}", size=24), None, None) for i in range(6)])
    xq = catalog.embedder.embed([block_image(f"v{i}", size=24) for i in range(3)])
    hits = catalog.search_vectors(xq, k=4)
    assert [h[0].product_id for h in hits] == ["v0", "v1", "v2"]
    assert all(len(h) == 4 for h in hits)
    assert all(h[0].score >= h[-1].score for h in hits)
    assert len(catalog.search_vectors(xq[0], k=50)[0]) == 6
    with pytest.raises(InvalidArgumentError):
        catalog.search_vectors(xq[:, :10], k=3)
    with pytest.raises(InvalidArgumentError):
        catalog.search_vectors(xq, k=0)
    with pytest.raises(InvalidArgumentError):
        catalog.search_vectors(np.full((1, catalog.dim), np.nan), k=1)


def test_template_features_are_cached(catalog_location):
    import matcher

    m = matcher.load("siamfc_pixels")
    image = block_image("tf", size=96)
    with Catalog(catalog_location, matcher=m) as cat:
        cat.add("tf", image, box=(8, 8, 88, 88))
        feats = cat.template_features("tf")
        direct = m.encode_reference(matcher.Reference.from_image(image, (8, 8, 88, 88)))
        assert features_to_bytes(feats) != b""
        for got, want in zip(feats.template, direct.template, strict=True):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
        assert feats.size_in_template == pytest.approx(direct.size_in_template)
        assert cat.template_features("tf") is feats  # in-memory cache
        with pytest.raises(ProductNotFoundError):
            cat.template_features("nope")
    assert row_counts(catalog_location, ("templates",)) == (1,)
    with Catalog(catalog_location) as cat:  # no matcher: no features, unless one is passed
        assert cat.template_features("tf") is None
        again = cat.template_features("tf", matcher=m)
        np.testing.assert_allclose(again.template[0].numpy(), direct.template[0].numpy(), atol=1e-6)


def test_cached_features_keep_the_verifier_embedding(catalog_location):
    import matcher
    from index.templates import features_from_bytes, matcher_key

    plain = matcher.load("siamfc_pixels")
    verifying = matcher.load(
        "siamfc_pixels", overrides=["inference.match.verifier=embedder_default"]
    )
    assert matcher_key(plain) != matcher_key(verifying)  # cached features never mix
    image = block_image("vf", size=96)
    with Catalog(catalog_location, matcher=verifying) as cat:
        cat.add("vf", image, box=(8, 8, 88, 88))
        feats = cat.template_features("vf")
    direct = verifying.encode_reference(matcher.Reference.from_image(image, (8, 8, 88, 88)))
    assert feats.embedding is not None
    np.testing.assert_allclose(feats.embedding, direct.embedding, atol=1e-6)
    again = features_from_bytes(features_to_bytes(feats), device=verifying.device)
    np.testing.assert_array_equal(again.embedding, feats.embedding)
    assert (
        features_from_bytes(
            features_to_bytes(
                plain.encode_reference(matcher.Reference.from_image(image, (8, 8, 88, 88)))
            ),
            device=plain.device,
        ).embedding
        is None
    )


def test_closed_catalog_refuses_work(catalog_location):
    cat = Catalog(catalog_location)
    cat.close()
    cat.close()
    with pytest.raises(CatalogError, match="closed"):
        cat.add("x", block_image("x"))


def test_cached_features_keep_the_geometric_keypoints(catalog_location):
    import matcher
    from index.templates import features_from_bytes, matcher_key

    plain = matcher.load("siamfc_pixels")
    geometric = matcher.load("siamfc_pixels", overrides=["inference.match.geometric=true"])
    assert matcher_key(plain) != matcher_key(geometric)  # cached features never mix
    image = block_image("gk", size=128)
    with Catalog(catalog_location, matcher=geometric) as cat:
        cat.add("gk", image, box=(8, 8, 120, 120))
        feats = cat.template_features("gk")
        direct = geometric.encode_reference(matcher.Reference.from_image(image, (8, 8, 120, 120)))
        assert feats.geometry is not None and feats.colour is not None
        assert len(feats.geometry.levels) == len(direct.geometry.levels) == 2
        for (p, d), (p0, d0) in zip(feats.geometry.levels, direct.geometry.levels, strict=True):
            np.testing.assert_array_equal(p, p0)
            np.testing.assert_array_equal(d, d0)
        np.testing.assert_array_equal(feats.geometry.corners, direct.geometry.corners)
        np.testing.assert_array_equal(feats.colour, direct.colour)
        # a scene search with the cached features works (they carry what the stage needs)
        scene = np.full((240, 320, 3), 90, np.uint8)
        scene[60:172, 100:212] = image[8:120, 8:120]
        result = geometric.match(feats, scene, score_threshold=0.0)
        assert result.best is not None
    again = features_from_bytes(features_to_bytes(feats), device=geometric.device)
    np.testing.assert_array_equal(again.colour, feats.colour)
