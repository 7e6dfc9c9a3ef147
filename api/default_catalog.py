"""The embedded default catalog: the synthetic generator's catalog products.

``siammatch serve`` (and so ``make serve``) starts with a catalog to search even on a fresh
machine: when its catalog folder holds none, :func:`ensure_catalog` fills one with the
catalog photos of :mod:`trainers.data.synth` (procedural packaged products on a studio
background, the same photos ``siammatch synth --seed S`` writes for the same seed), with
their names, families and categories as metadata. It runs once, before gunicorn starts
its workers, under a file lock, and builds the catalog in a temporary folder renamed into
place at the end: several ``serve`` commands started together create it once, and an
interrupted creation leaves no half-made catalog behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

logger = logging.getLogger(__name__)

DEFAULT_PRODUCTS = 36
DEFAULT_SEED = 0


def synth_products(count: int, *, seed: int) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
    """The synthetic catalog's products.

    Args:
        count: number of products.
        seed: the generator's seed.

    Yields:
        ``(product_id, photo, metadata)``: ids ``synth-001``..., ``(400, 400, 3)`` uint8
        RGB photos, and ``{"name", "family", "category", "shape", "synth_id"}``.
    """
    from trainers.data.synth import catalog_photo, design_catalog, render_product
    from trainers.data.synth.worker import CATALOG_KEY

    for spec in design_catalog(count, seed=seed):
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(CATALOG_KEY, spec.product_id))
        )
        photo = catalog_photo(render_product(spec), rng=rng)
        metadata = {
            "name": spec.name,
            "family": spec.family_name,
            "category": spec.category,
            "shape": spec.shape,
            "synth_id": spec.product_id,
        }
        yield f"synth-{spec.product_id:03d}", photo, metadata


def holds_catalog(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a non-empty folder (an existing catalog, or something else that
    :class:`index.catalog.Catalog` will judge when it opens it)."""
    folder = Path(path)
    return folder.is_dir() and any(folder.iterdir())


def ensure_catalog(
    path: str | os.PathLike,
    *,
    num_products: int = DEFAULT_PRODUCTS,
    seed: int = DEFAULT_SEED,
    matcher: Any | None = None,
) -> bool:
    """Create the default catalog at ``path`` unless a catalog is already there.

    Args:
        path: the catalog folder.
        num_products: synthetic products to add (0: an empty catalog).
        seed: the synthetic generator's seed.
        matcher: the service's default matcher, handed to the catalog.

    Returns:
        Whether a catalog was created.
    """
    from index.catalog import Catalog

    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    with FileLock(lock_path):
        if holds_catalog(folder):
            return False
        staging = folder.parent / f".{folder.name}.creating-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("creating the default catalog at %s (%d products)", folder, num_products)
        try:
            catalog = Catalog(staging, matcher=matcher, create=True)
            try:
                for product_id, photo, metadata in synth_products(num_products, seed=seed):
                    catalog.add(product_id, photo, metadata=metadata)
            finally:
                catalog.close()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if folder.is_dir():
            folder.rmdir()  # an empty folder stands in the way of the rename
        os.rename(staging, folder)
    return True
