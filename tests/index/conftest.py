"""Fixtures of the catalog tests: synthetic vectors, small product images, catalogs on
both stores (a temporary folder, or a new database of the test process's PostgreSQL
server: ``catalog_location`` in ``tests/conftest.py``), and ways to look at a catalog's
database directly.

Product images are seeded random colour blocks (distinct for every id), so a catalog of
dozens of products builds in a second on one CPU thread.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import psycopg
import pytest
import torch

from index.catalog import Catalog
from index.location import is_database_url
from tests.conftest import new_location

#: The schema of a PostgreSQL catalog's tables (named here, not imported, so a test notices
#: if the tables move).
PG_SCHEMA = "siammatch"


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


def row_counts(location: str, tables: tuple[str, ...]) -> tuple[int, ...]:
    """The rows of each of ``tables``, read straight from the database of the catalog at
    ``location`` (not through the catalog)."""
    if is_database_url(location):
        queries = [f"SELECT COUNT(*) FROM {PG_SCHEMA}.{t}" for t in tables]
        with psycopg.connect(location) as conn:
            return tuple(conn.execute(q).fetchone()[0] for q in queries)
    db = sqlite3.connect(Path(location) / "catalog.db")
    try:
        return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)
    finally:
        db.close()


def soon(cat: Catalog, condition: Callable[[], bool], *, timeout: float = 60.0) -> None:
    """Assert ``condition()``: at once for a catalog that syncs and maintains its index in
    the calls themselves (a folder's default), within ``timeout`` seconds for one whose
    follower thread does it, a moment after each commit (a database catalog's default)."""
    if not cat.replication()["follower"]:
        assert condition()
        return
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the follower did not make it true in {timeout:.0f} s")
        time.sleep(0.02)


@pytest.fixture
def other_location(backend, tmp_path, request) -> str:
    """A second new catalog location on the test's backend (beside ``catalog_location``)."""
    return new_location(request, backend, tmp_path / "other")


@pytest.fixture
def catalog(catalog_location):
    """An empty Flat catalog at ``catalog_location`` (a folder or a database)."""
    cat = Catalog(catalog_location)
    yield cat
    cat.close()
