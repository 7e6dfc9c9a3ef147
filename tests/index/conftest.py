"""Fixtures of the catalog tests: synthetic vectors, small product images, catalogs in
temporary folders.

Product images are seeded random colour blocks (distinct for every id), so a catalog of
dozens of products builds in a second on one CPU thread.
"""

from __future__ import annotations

import zlib

import faiss
import numpy as np
import pytest
import torch

from index.catalog import Catalog


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """One OpenMP thread for torch and faiss in these tests: on a busy 2-core machine,
    spinning OpenMP teams make small workloads several times slower. Restored after."""
    torch_threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    faiss.omp_set_num_threads(faiss_threads)


def clustered_vectors(
    n: int, d: int, *, seed: int, centers: int = 256, intrinsic: int = 24, spread: float = 1.5
) -> np.ndarray:
    """Unit vectors around ``centers`` cluster centres, each cluster a noisy
    ``intrinsic``-dimensional patch (embeddings lie near low-dimensional manifolds).

    The centres and patches depend only on ``d`` (not on ``seed``), so database and
    queries drawn with different seeds share clusters.
    """
    shape_rng = np.random.default_rng(1234)
    mu = shape_rng.standard_normal((centers, d)).astype(np.float32)
    basis = shape_rng.standard_normal((centers, intrinsic, d)).astype(np.float32)
    basis /= np.sqrt(intrinsic)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, centers, n)
    z = rng.standard_normal((n, intrinsic)).astype(np.float32)
    x = mu[labels] + spread * np.einsum("ni,nid->nd", z, basis[labels])
    x += 0.1 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def block_image(key: str, *, size: int = 96) -> np.ndarray:
    """A distinct ``(size, size, 3)`` uint8 image for ``key``: a 6x6 grid of random colours."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    cells = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    reps = -(-size // 6)
    return np.ascontiguousarray(np.kron(cells, np.ones((reps, reps, 1), np.uint8))[:size, :size])


def assert_consistent(cat: Catalog, expected_ids: set[str]) -> None:
    """The catalog's index, store and listing agree, and hold exactly ``expected_ids``."""
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


@pytest.fixture
def catalog(tmp_path):
    """An empty Flat catalog in a temporary folder."""
    cat = Catalog(tmp_path / "catalog")
    yield cat
    cat.close()
