"""The catalog: add / get / delete / list, errors that leave nothing behind, persistence,
recovery from missing or damaged index files, training, re-indexing and re-embedding."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3

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
from index.search import search_scene
from index.templates import features_to_bytes
from matcher.embedder import EmbedderSpec, build_embedder
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
from matcher.images import ImageLimits
from tests.index.conftest import block_image


def state(cat: Catalog) -> tuple:
    """Everything a failed write must leave unchanged."""
    db = sqlite3.connect(cat.path / "catalog.db")
    try:
        counts = tuple(
            db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("products", "vectors", "images", "templates", "changes")
        )
    finally:
        db.close()
    return counts, cat.verify()["indexed"]


def assert_consistent(cat: Catalog, expected_ids: set[str]) -> None:
    report = cat.verify()
    assert report["consistent"], report
    ids = set()
    cursor = None
    while True:
        page, cursor = cat.list(cursor=cursor, limit=100)
        ids.update(p.product_id for p in page)
        if cursor is None:
            break
    assert ids == expected_ids
    assert len(cat) == report["indexed"] == len(expected_ids)


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
def test_failed_add_leaves_nothing_behind(catalog, kwargs, error):
    catalog.add("taken", block_image("taken"))
    before = state(catalog)
    args = {"product_id": "new", "image": block_image("new"), "metadata": {"k": 1}, "box": None}
    args.update(kwargs)
    with pytest.raises(error):
        catalog.add(args.pop("product_id"), args.pop("image"), **args)
    assert state(catalog) == before
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


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "cat"
    with Catalog(path, factory="HNSW32") as cat:
        cat.add_many([(f"r{i}", block_image(f"r{i}", size=32), {"i": i}, None) for i in range(12)])
        cat.delete("r3")
    with Catalog(path, create=False) as cat:
        assert cat.factory == "HNSW32"
        assert cat.get("r5").metadata == {"i": 5}
        assert cat.search(block_image("r5", size=32), k=1)[0].product_id == "r5"
        assert_consistent(cat, {f"r{i}" for i in range(12)} - {"r3"})
    with pytest.raises(CatalogError):
        Catalog(tmp_path / "none", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogError):
        Catalog(tmp_path / "file")
    with pytest.raises(InvalidArgumentError):
        Catalog(tmp_path / "badfactory", factory="IVF,Nope")
    assert not (tmp_path / "badfactory").exists()
    with pytest.raises(CatalogError, match="is a postgresql URL"):
        Catalog("postgresql://user@host/db")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"x")
    with pytest.raises(CatalogError, match="holds other files and no catalog"):
        Catalog(photos)
    assert [p.name for p in photos.iterdir()] == ["a.png"]  # nothing written beside it


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale", "foreign"])
def test_index_file_is_rebuilt_or_caught_up(tmp_path, damage):
    path = tmp_path / "cat"
    with Catalog(path) as cat:
        cat.add_many([(f"s{i}", block_image(f"s{i}", size=32), None, None) for i in range(6)])
    old = (path / "index.faiss").read_bytes()
    with Catalog(path) as cat:
        cat.add("late", block_image("late", size=32))
        cat.delete("s0")
    index_file = path / "index.faiss"
    if damage == "missing":
        index_file.unlink()
    elif damage == "corrupt":
        raw = bytearray(index_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        index_file.write_bytes(bytes(raw))
    elif damage == "stale":
        index_file.write_bytes(old)  # the index of before "late" and the delete
    else:
        with Catalog(tmp_path / "other") as other:
            other.add("s1", block_image("s1", size=32))
        shutil.copy(tmp_path / "other" / "index.faiss", index_file)
    with Catalog(path, create=False) as cat:
        assert_consistent(cat, {"late", *(f"s{i}" for i in range(1, 6))})
        assert cat.search(block_image("late", size=32), k=1)[0].product_id == "late"
        assert all(h.product_id != "s0" for h in cat.search(block_image("s0", size=32), k=10))


def test_ivf_trains_once_enough_vectors_exist(tmp_path):
    with Catalog(tmp_path / "cat", factory="IVF4,Flat", min_train_size=20) as cat:
        cat.add_many([(f"t{i:02d}", block_image(f"t{i}", size=24), None, None) for i in range(19)])
        info = cat.info()["index"]
        assert info["state"] == "exact (untrained)" and info["train_size"] == 20
        assert "nlist" not in info
        cat.add_many(
            [(f"t{i:02d}", block_image(f"t{i}", size=24), None, None) for i in range(19, 30)]
        )
        info = cat.info()["index"]
        assert info["state"] == "ready" and info["nlist"] == 4 and info["vectors"] == 30
        for i in (0, 19, 29):
            assert cat.search(block_image(f"t{i}", size=24), k=1)[0].product_id == f"t{i:02d}"
        assert_consistent(cat, {f"t{i:02d}" for i in range(30)})
    with Catalog(tmp_path / "cat") as cat:  # the trained index is loaded, not retrained
        assert cat.info()["index"]["state"] == "ready"


def test_train_and_rebuild_and_other_instances_follow(tmp_path):
    path = tmp_path / "cat"
    a = Catalog(path, factory="IVF8,Flat")
    b = Catalog(path)
    try:
        a.add_many([(f"q{i:02d}", block_image(f"q{i}", size=24), None, None) for i in range(40)])
        assert b.info()["index"]["state"] == "exact (untrained)"
        with (
            Catalog(tmp_path / "small", factory="IVF64,Flat") as small,
            pytest.raises(CatalogError),
        ):
            small.train()  # fewer vectors than lists
        a.train()
        assert a.info()["index"]["state"] == "ready"
        assert b.info()["index"]["state"] == "ready"  # b loaded a's trained index
        b.rebuild("HNSW32")
        assert a.info()["index"]["factory"] == "HNSW32" and a.factory == "HNSW32"
        a.delete("q05")
        b.add("q99", block_image("q99", size=24))
        for cat in (a, b):
            assert cat.search(block_image("q99", size=24), k=1)[0].product_id == "q99"
            assert "q05" not in {h.product_id for h in cat.search(block_image("q5", size=24), k=40)}
            assert_consistent(cat, {f"q{i:02d}" for i in range(40)} - {"q05"} | {"q99"})
        with pytest.raises(InvalidArgumentError):
            a.rebuild("IVF,Nope")
    finally:
        a.close()
        b.close()
    with Catalog(path) as cat:
        assert cat.factory == "HNSW32"


def test_hnsw_tombstones_are_compacted(tmp_path):
    with Catalog(tmp_path / "cat", factory="HNSW32") as cat:
        ids = [f"h{i:03d}" for i in range(130)]
        cat.add_many([(i, block_image(i, size=12), None, None) for i in ids])
        for i in ids[:101]:
            cat.delete(i)
        info = cat.info()["index"]
        assert info["deleted_pending"] == 0 and info["vectors"] == 29  # rebuilt past 100
        cat.delete(ids[101])
        assert cat.info()["index"]["deleted_pending"] == 1
        assert_consistent(cat, set(ids[102:]))


def test_a_different_embedder_is_refused_or_replaces(tmp_path):
    path = tmp_path / "cat"
    images = {f"e{i}": block_image(f"e{i}", size=48) for i in range(5)}
    with Catalog(path) as cat:
        cat.add_many([(k, v, None, None) for k, v in images.items()])
    other = build_embedder(EmbedderSpec(dim=64, seed=7))
    with pytest.raises(CatalogError, match="another embedder"):
        Catalog(path, embedder=other)
    follower = Catalog(path)  # an instance holding the old embedder
    with Catalog(path, embedder=other, replace_embedder=True) as cat:
        assert cat.dim == 64 and cat.embedder is other
        xq = other.embed(list(images.values()))
        assert [h[0].product_id for h in cat.search_vectors(xq, k=1)] == list(images)
        cat.add("e9", block_image("e9", size=48))
    assert follower.search(images["e2"], k=1)[0].product_id == "e2"  # switched embedders
    assert follower.dim == 64 and follower.embedder.spec.seed == 7
    follower.add("e10", block_image("e10", size=48))
    assert_consistent(follower, {*images, "e9", "e10"})
    follower.close()
    with Catalog(path) as cat:
        assert cat.embedder.spec.dim == 64


def test_template_features_are_cached(tmp_path):
    import matcher

    m = matcher.load("siamfc_pixels")
    image = block_image("tf", size=96)
    with Catalog(tmp_path / "cat", matcher=m) as cat:
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
    db = sqlite3.connect(tmp_path / "cat" / "catalog.db")
    assert db.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 1
    db.close()
    with Catalog(tmp_path / "cat") as cat:  # no matcher: no features, unless one is passed
        assert cat.template_features("tf") is None
        again = cat.template_features("tf", matcher=m)
        np.testing.assert_allclose(again.template[0].numpy(), direct.template[0].numpy(), atol=1e-6)


def test_cached_features_keep_the_verifier_embedding(tmp_path):
    import matcher
    from index.templates import features_from_bytes, matcher_key

    plain = matcher.load("siamfc_pixels")
    verifying = matcher.load(
        "siamfc_pixels", overrides=["inference.match.verifier=embedder_default"]
    )
    assert matcher_key(plain) != matcher_key(verifying)  # cached features never mix
    image = block_image("vf", size=96)
    with Catalog(tmp_path / "cat", matcher=verifying) as cat:
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


def test_closed_catalog_refuses_work(tmp_path):
    cat = Catalog(tmp_path / "cat")
    cat.close()
    cat.close()
    with pytest.raises(CatalogError, match="closed"):
        cat.add("x", block_image("x"))


def test_search_params_apply_once_the_index_is_trained(tmp_path):
    path = tmp_path / "cat"
    with pytest.raises(InvalidArgumentError):
        Catalog(path, factory="HNSW32", search_params="nprobe=3")
    assert not path.exists()
    with Catalog(path, factory="IVF4,Flat", search_params="nprobe=3", min_train_size=8) as cat:
        cat.add_many([(f"n{i}", block_image(f"n{i}", size=16), None, None) for i in range(5)])
        assert "nprobe" not in cat.info()["index"]  # still exact
        cat.add_many([(f"n{i}", block_image(f"n{i}", size=16), None, None) for i in range(5, 9)])
        assert cat.info()["index"]["nprobe"] == 3
        with pytest.raises(InvalidArgumentError):
            cat.rebuild("HNSW32")  # nprobe means nothing to HNSW
        assert cat.factory == "IVF4,Flat"


def test_temporary_files_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "cat"
    with Catalog(path) as cat:
        cat.add("t", block_image("t", size=16))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = path / f".index.faiss.{int(dead.stdout)}.abc123.tmp"
    live = path / f".index.faiss.{os.getpid()}.def456.tmp"
    stale.write_bytes(b"half an index")
    live.write_bytes(b"being written")
    with Catalog(path) as cat:
        assert cat.verify()["consistent"]
    assert not stale.exists() and live.exists()


def test_cached_features_keep_the_geometric_keypoints(tmp_path):
    import matcher
    from index.templates import features_from_bytes, matcher_key

    plain = matcher.load("siamfc_pixels")
    geometric = matcher.load("siamfc_pixels", overrides=["inference.match.geometric=true"])
    assert matcher_key(plain) != matcher_key(geometric)  # cached features never mix
    image = block_image("gk", size=128)
    with Catalog(tmp_path / "cat", matcher=geometric) as cat:
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


def test_thin_photos_stored_before_the_limits_are_still_read(tmp_path):
    """A catalog written before the aspect-ratio limit may hold a thin photo: searching,
    computing templates and re-embedding re-read it and must not refuse it (issue 18)."""
    import matcher

    strip = np.tile(block_image("strip", size=40)[:1], (1, 30, 1))  # 1 x 1200
    path = tmp_path / "cat"
    with Catalog(path) as cat:
        with pytest.raises(ImageTooThinError):
            cat.add("strip", strip)
        # What an older version let through.
        cat.add("strip", strip, limits=ImageLimits(max_aspect=math.inf))
        cat.add("block", block_image("block", size=64))
    shipped = matcher.load("siammask_small")
    with Catalog(path, matcher=shipped) as cat:
        assert cat.get("strip").image().shape == (1, 1200, 3)
        assert cat.template_features("strip") is not None  # from the stored photo
        scene = np.tile(block_image("block", size=64), (2, 2, 1))
        hits = search_scene(cat, shipped, scene, k=2, candidates=2)
        assert all(np.isfinite(inst.box).all() for hit in hits for inst in hit.instances)
    other = build_embedder(EmbedderSpec(dim=64, seed=7))
    with Catalog(path, embedder=other, replace_embedder=True) as cat:
        assert cat.dim == 64  # every stored photo re-embedded, the strip included
        assert_consistent(cat, {"strip", "block"})
