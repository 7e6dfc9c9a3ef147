"""The catalog's index over time: persistence, recovery from missing or damaged index
files, training, re-indexing, re-embedding with another embedder and stale temporary
files, on a catalog folder and on a PostgreSQL catalog with its local index cache; and the
locations refused (adding, reading and searching products are in ``test_catalog.py``)."""

from __future__ import annotations

import math
import os
import shutil

import numpy as np
import psycopg
import pytest

from index.catalog import Catalog
from index.search import search_scene
from matcher.embedder import EmbedderSpec, build_embedder
from matcher.errors import CatalogError, ImageTooThinError, InvalidArgumentError
from matcher.images import ImageLimits
from tests.index.conftest import assert_consistent, block_image, row_counts, soon


def test_reopen_keeps_everything(catalog_location, backend):
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog(catalog_location, create=False)
    with pytest.raises(InvalidArgumentError):
        Catalog(catalog_location, factory="IVF,Nope")
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog(catalog_location, create=False)  # the refused factory created nothing
    with Catalog(catalog_location, factory="HNSW32") as cat:
        cat.add_many([(f"r{i}", block_image(f"r{i}", size=32), {"i": i}, None) for i in range(12)])
        cat.delete("r3")
        uuid = cat.uuid
    with Catalog(catalog_location, create=False) as cat:
        assert cat.factory == "HNSW32" and cat.uuid == uuid
        assert cat.get("r5").metadata == {"i": 5}
        assert cat.search(block_image("r5", size=32), k=1)[0].product_id == "r5"
        assert_consistent(cat, {f"r{i}" for i in range(12)} - {"r3"})
        info = cat.info()
        assert info["backend"] == backend and info["path"] == catalog_location
        assert info["bytes"]["index.faiss"] == (cat.path / "index.faiss").stat().st_size
        assert info["bytes"][{"sqlite": "catalog.db", "postgresql": "database"}[backend]] > 0


def test_folders_that_hold_no_catalog_are_refused(tmp_path):
    """The folder form: a missing folder (without ``create``), a file, a folder of other
    files, a new folder with a refused factory (never created); and URLs of other schemes."""
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogError, match="is not a folder"):
        Catalog(tmp_path / "file")
    with pytest.raises(InvalidArgumentError):
        Catalog(tmp_path / "badfactory", factory="IVF,Nope")
    assert not (tmp_path / "badfactory").exists()
    with pytest.raises(CatalogError, match="is a mysql: URL"):
        Catalog("mysql://user@host/db")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"x")
    with pytest.raises(CatalogError, match="holds other files and no catalog"):
        Catalog(photos)
    assert [p.name for p in photos.iterdir()] == ["a.png"]  # nothing written beside it


def test_a_database_keeps_its_other_tables(pg_cluster, tmp_path):
    """The database form of "a folder of other files": a shop's database holds tables of
    its own; the catalog lives beside them, in its own schema, and leaves them alone."""
    url = pg_cluster.new_database()
    try:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, price INTEGER)")
            conn.execute("INSERT INTO products VALUES ('tea', 3), ('cake', 5)")
        with Catalog(url, index_cache=tmp_path / "index-cache") as cat:
            cat.add("tea", block_image("tea", size=32))
            assert_consistent(cat, {"tea"})
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT sku, price FROM public.products ORDER BY sku").fetchall()
        assert rows == [("cake", 5), ("tea", 3)]
        assert row_counts(url, ("products",)) == (1,)  # siammatch.products
    finally:
        pg_cluster.drop_database(url)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale", "foreign"])
def test_index_file_is_rebuilt_or_caught_up(catalog_location, tmp_path, damage):
    """The index file a folder holds, or the one a database catalog caches on this machine
    (``cat.path`` is the cache folder), is only a copy: whatever happened to it, the
    catalog reopens equal to its database."""
    with Catalog(catalog_location) as cat:
        cat.add_many([(f"s{i}", block_image(f"s{i}", size=32), None, None) for i in range(6)])
        index_file = cat.path / "index.faiss"
    old = index_file.read_bytes()
    with Catalog(catalog_location) as cat:
        cat.add("late", block_image("late", size=32))
        cat.delete("s0")
    assert index_file.read_bytes() != old
    if damage == "missing":
        index_file.unlink()
    elif damage == "corrupt":
        raw = bytearray(index_file.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        index_file.write_bytes(bytes(raw))
    elif damage == "stale":
        index_file.write_bytes(old)  # the index of before "late" and the delete
    else:
        with Catalog(tmp_path / "foreign") as other:
            other.add("s1", block_image("s1", size=32))
        shutil.copy(tmp_path / "foreign" / "index.faiss", index_file)  # another catalog's
    with Catalog(catalog_location, create=False) as cat:
        assert_consistent(cat, {"late", *(f"s{i}" for i in range(1, 6))})
        assert cat.search(block_image("late", size=32), k=1)[0].product_id == "late"
        assert all(h.product_id != "s0" for h in cat.search(block_image("s0", size=32), k=10))


def test_ivf_trains_once_enough_vectors_exist(catalog_location):
    with Catalog(catalog_location, factory="IVF4,Flat", min_train_size=20) as cat:
        cat.add_many([(f"t{i:02d}", block_image(f"t{i}", size=24), None, None) for i in range(19)])
        info = cat.info()["index"]
        assert info["state"] == "exact (untrained)" and info["train_size"] == 20
        assert "nlist" not in info
        cat.add_many(
            [(f"t{i:02d}", block_image(f"t{i}", size=24), None, None) for i in range(19, 30)]
        )
        soon(cat, lambda: cat.info()["index"]["state"] == "ready")
        info = cat.info()["index"]
        assert info["nlist"] == 4 and info["vectors"] == 30
        for i in (0, 19, 29):
            assert cat.search(block_image(f"t{i}", size=24), k=1)[0].product_id == f"t{i:02d}"
        assert_consistent(cat, {f"t{i:02d}" for i in range(30)})
    with Catalog(catalog_location) as cat:  # the trained index is loaded, not retrained
        assert cat.info()["index"]["state"] == "ready"


def found(cat: Catalog, key: str, *, k: int) -> list[str]:
    """The ids ``cat.search`` returns for ``key``'s 24-pixel block image."""
    return [h.product_id for h in cat.search(block_image(key, size=24), k=k)]


def test_train_and_rebuild_and_other_instances_follow(catalog_location, other_location):
    a = Catalog(catalog_location, factory="IVF8,Flat")
    b = Catalog(catalog_location)
    try:
        a.add_many([(f"q{i:02d}", block_image(f"q{i}", size=24), None, None) for i in range(40)])
        assert b.info()["index"]["state"] == "exact (untrained)"
        with (
            Catalog(other_location, factory="IVF64,Flat") as small,
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
        for cat in (a, b):  # each finds the other's write
            soon(cat, lambda c=cat: found(c, "q99", k=1) == ["q99"])
            soon(cat, lambda c=cat: "q05" not in found(c, "q5", k=40))
            assert_consistent(cat, {f"q{i:02d}" for i in range(40)} - {"q05"} | {"q99"})
        with pytest.raises(InvalidArgumentError):
            a.rebuild("IVF,Nope")
    finally:
        a.close()
        b.close()
    with Catalog(catalog_location) as cat:
        assert cat.factory == "HNSW32"


def test_hnsw_tombstones_are_compacted(catalog_location):
    with Catalog(catalog_location, factory="HNSW32") as cat:
        ids = [f"h{i:03d}" for i in range(130)]
        cat.add_many([(i, block_image(i, size=12), None, None) for i in ids])
        for i in ids[:101]:
            cat.delete(i)
        soon(cat, lambda: cat.info()["index"]["deleted_pending"] == 0)  # rebuilt past 100
        assert cat.info()["index"]["vectors"] == 29
        cat.delete(ids[101])
        assert cat.info()["index"]["deleted_pending"] == 1
        assert_consistent(cat, set(ids[102:]))


def test_a_different_embedder_is_refused_or_replaces(catalog_location):
    images = {f"e{i}": block_image(f"e{i}", size=48) for i in range(5)}
    with Catalog(catalog_location) as cat:
        cat.add_many([(k, v, None, None) for k, v in images.items()])
    other = build_embedder(EmbedderSpec(dim=64, seed=7))
    with pytest.raises(CatalogError, match="another embedder"):
        Catalog(catalog_location, embedder=other)
    older = Catalog(catalog_location)  # an instance holding the old embedder
    with Catalog(catalog_location, embedder=other, replace_embedder=True) as cat:
        assert cat.dim == 64 and cat.embedder is other
        xq = other.embed(list(images.values()))
        assert [h[0].product_id for h in cat.search_vectors(xq, k=1)] == list(images)
        cat.add("e9", block_image("e9", size=48))
    # the older instance switches embedders (on its next search, or by its follower thread)
    soon(older, lambda: older.search(images["e2"], k=1)[0].product_id == "e2" and older.dim == 64)
    assert older.embedder.spec.seed == 7
    older.add("e10", block_image("e10", size=48))
    assert_consistent(older, {*images, "e9", "e10"})
    older.close()
    with Catalog(catalog_location) as cat:
        assert cat.embedder.spec.dim == 64


def test_search_params_apply_once_the_index_is_trained(catalog_location):
    with pytest.raises(InvalidArgumentError):
        Catalog(catalog_location, factory="HNSW32", search_params="nprobe=3")
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog(catalog_location, create=False)  # nothing was created
    with Catalog(
        catalog_location, factory="IVF4,Flat", search_params="nprobe=3", min_train_size=8
    ) as cat:
        cat.add_many([(f"n{i}", block_image(f"n{i}", size=16), None, None) for i in range(5)])
        assert "nprobe" not in cat.info()["index"]  # still exact
        cat.add_many([(f"n{i}", block_image(f"n{i}", size=16), None, None) for i in range(5, 9)])
        soon(cat, lambda: cat.info()["index"].get("nprobe") == 3)
        with pytest.raises(InvalidArgumentError):
            cat.rebuild("HNSW32")  # nprobe means nothing to HNSW
        assert cat.factory == "IVF4,Flat"


def test_temporary_files_of_dead_writers_are_removed(catalog_location):
    """In a catalog folder, or in a database catalog's cache folder (``cat.path``)."""
    import subprocess
    import sys

    with Catalog(catalog_location) as cat:
        cat.add("t", block_image("t", size=16))
        folder = cat.path
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = folder / f".index.faiss.{int(dead.stdout)}.abc123.tmp"
    live = folder / f".index.faiss.{os.getpid()}.def456.tmp"
    stale.write_bytes(b"half an index")
    live.write_bytes(b"being written")
    with Catalog(catalog_location) as cat:
        assert cat.verify()["consistent"]
    assert not stale.exists() and live.exists()


def test_thin_photos_stored_before_the_limits_are_still_read(catalog_location):
    """A catalog written before the aspect-ratio limit may hold a thin photo: searching,
    computing templates and re-embedding re-read it and must not refuse it (issue 18)."""
    import matcher

    strip = np.tile(block_image("strip", size=40)[:1], (1, 30, 1))  # 1 x 1200
    with Catalog(catalog_location) as cat:
        with pytest.raises(ImageTooThinError):
            cat.add("strip", strip)
        # What an older version let through.
        cat.add("strip", strip, limits=ImageLimits(max_aspect=math.inf))
        cat.add("block", block_image("block", size=64))
    shipped = matcher.load("siammask_small")
    with Catalog(catalog_location, matcher=shipped) as cat:
        assert cat.get("strip").image().shape == (1, 1200, 3)
        assert cat.template_features("strip") is not None  # from the stored photo
        scene = np.tile(block_image("block", size=64), (2, 2, 1))
        hits = search_scene(cat, shipped, scene, k=2, candidates=2)
        assert all(np.isfinite(inst.box).all() for hit in hits for inst in hit.instances)
    other = build_embedder(EmbedderSpec(dim=64, seed=7))
    with Catalog(catalog_location, embedder=other, replace_embedder=True) as cat:
        assert cat.dim == 64  # every stored photo re-embedded, the strip included
        assert_consistent(cat, {"strip", "block"})
