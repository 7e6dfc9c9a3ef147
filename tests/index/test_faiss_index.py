"""The catalog's FAISS index against brute force, its tombstones and its files."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index.faiss_factory import DEFAULT_EF_SEARCH, check_factory, train_size
from index.faiss_index import VectorIndex
from index.index_file import IndexFileError
from matcher.errors import InvalidArgumentError
from tests.index.conftest import clustered_vectors

D = 64
NB = 20_000
NQ = 400
K = 10


@pytest.fixture(scope="module")
def data():
    xb = clustered_vectors(NB, D, seed=0)
    xq = clustered_vectors(NQ, D, seed=1)
    ids = np.arange(1000, 1000 + NB, dtype=np.int64)  # FAISS ids are not row numbers
    flat = faiss.IndexFlatIP(D)
    flat.add(xb)
    _, gt = flat.search(xq, K)
    return xb, xq, ids, ids[gt]


def recall_at_k(I: np.ndarray, gt: np.ndarray) -> float:  # noqa: E741 - faiss naming
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(I, gt, strict=True)]))


def build(factory: str, xb: np.ndarray, ids: np.ndarray, **kwargs) -> VectorIndex:
    index = VectorIndex.empty(factory, D, trained=True, **kwargs)
    if not index.index.is_trained:
        index.train(xb)
    index.add(ids, xb)
    return index


# Minimum recall@10 at the default search parameters. Flat is the reference itself; the
# 4-bit fast-scan PQ is lossy (16 or 32 bytes a vector) and has a floor that only rules
# out a broken index (chance is 10 / 20000).
FACTORIES = {
    "Flat": 1.0,
    "IVF256,Flat": 0.95,
    "IVF64,Flat": 0.95,
    "HNSW32": 0.95,
    "IVF256,PQ32x4fs": 0.5,
    "IVF64,PQ16x4fs": 0.4,
}


@pytest.mark.parametrize("factory", list(FACTORIES))
def test_recall_against_brute_force(data, factory):
    xb, xq, ids, gt = data
    index = build(factory, xb, ids)
    D_, I = index.search(xq, K)  # noqa: E741
    assert D_.shape == I.shape == (NQ, K)
    recall = recall_at_k(I, gt)
    print(f"{factory}: recall@{K} = {recall:.4f} {index.settings()}")
    assert recall >= FACTORIES[factory] - 1e-9
    assert np.all(np.diff(D_, axis=1) <= 1e-5)  # best first


def test_ivf_default_nprobe_is_what_reaches_the_recall(data):
    xb, xq, ids, gt = data
    index = build("IVF256,Flat", xb, ids)
    assert index.settings() == {"nlist": 256, "nprobe": 32}
    default = recall_at_k(index.search(xq, K)[1], gt)
    faiss.extract_index_ivf(index.inner).nprobe = 1
    assert recall_at_k(index.search(xq, K)[1], gt) < default - 0.1
    tuned = build("IVF256,Flat", xb, ids, search_params="nprobe=2")
    assert tuned.settings()["nprobe"] == 2
    hnsw = VectorIndex.empty("HNSW32", D, search_params=None)
    assert hnsw.settings() == {"efSearch": DEFAULT_EF_SEARCH}


def test_hnsw_deletes_become_tombstones(data):
    xb, xq, ids, _ = data
    index = build("HNSW32", xb, ids)
    assert not index.removes
    gone = ids[::10]
    index.remove(gone)
    index.remove(np.array([7], np.int64))  # unknown ids are ignored
    assert len(index.tombstones) == len(gone)
    assert len(index) == NB - len(gone)
    assert not np.isin(gone, index.ids()).any()
    _, I = index.search(xq, K)  # noqa: E741
    assert not np.isin(I, gone).any()
    keep = ~np.isin(ids, gone)
    flat = faiss.IndexFlatIP(D)
    flat.add(xb[keep])
    _, gt = flat.search(xq, K)
    assert recall_at_k(I, ids[keep][gt]) >= 0.95


@pytest.mark.parametrize(
    "factory", ["Flat", "IVF64,Flat", "IVF64,PQ16x4fs", "PQ16x4fs", "PCA32,IVF64,Flat"]
)
def test_deletes_are_real_and_keep_the_other_ids(data, factory):
    xb, _, ids, _ = data
    index = build(factory, xb[:3000], ids[:3000])
    assert index.removes
    index.remove(ids[:100:2])
    index.remove(ids[2000:2100])
    assert index.index.ntotal == 2850 and not index.tombstones
    kept = np.setdiff1d(ids[:3000], np.concatenate([ids[:100:2], ids[2000:2100]]))
    np.testing.assert_array_equal(np.sort(index.ids()), kept)
    probe = np.r_[0:100, 1900:2200, 2900:3000]
    _, I = index.search(xb[probe], 1)  # noqa: E741
    assert not np.isin(I, ids[:100:2]).any() and not np.isin(I, ids[2000:2100]).any()
    # Every remaining vector still finds its own id (no shifted labels after the removal).
    alive = np.isin(ids[probe], kept)
    own = I[alive, 0] == ids[probe][alive]
    assert own.mean() >= (1.0 if "PQ" not in factory else 0.5)


def test_untrained_factory_starts_exact(data):
    xb, xq, ids, gt = data
    index = VectorIndex.empty("IVF256,Flat", D)
    assert index.exact and index.index.is_trained
    index.add(ids, xb)
    assert recall_at_k(index.search(xq, K)[1], gt) == 1.0


def test_save_and_load(tmp_path, data):
    xb, xq, ids, _ = data
    index = build("IVF64,Flat", xb[:2000], ids[:2000])
    path = tmp_path / "index.faiss"
    size = index.save(path, uuid="u1", applied=17, vectors_version=2)
    assert path.stat().st_size == size
    loaded, header = VectorIndex.load(path)
    assert (header.uuid, header.factory, header.applied, header.vectors_version) == (
        "u1",
        "IVF64,Flat",
        17,
        2,
    )
    np.testing.assert_array_equal(loaded.search(xq, K)[1], index.search(xq, K)[1])
    assert loaded.settings() == index.settings()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_files_are_refused(tmp_path, data, damage):
    xb, _, ids, _ = data
    path = tmp_path / "index.faiss"
    build("Flat", xb[:500], ids[:500]).save(path, uuid="u", applied=1, vectors_version=1)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-100] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"SIAMIDX1" + b"\xff" * 64)
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexFileError):
        VectorIndex.load(path)
    with pytest.raises(IndexFileError):
        VectorIndex.load(tmp_path / "missing.faiss")


def test_factory_checks():
    assert check_factory("IVF16,Flat", D) == "IVF16,Flat"
    for bad in ("IVF,Flat", "Nonsense", "", "IDMap,Flat", "PQ7", "IVF16,PQ8,RFlat"):
        with pytest.raises(InvalidArgumentError):
            check_factory(bad, D)
    with pytest.raises(InvalidArgumentError):
        VectorIndex.empty("Flat", D, search_params="nprobe=banana")
    assert train_size("Flat", D) == 0
    assert train_size("HNSW32", D) == 0
    assert train_size("IVF64,Flat", D) == 39 * 64
    assert train_size("IVF64,Flat", D, minimum=True) == 64
    assert train_size("IVF16,PQ8", D, minimum=True) == 256
