"""The catalog's embedder, kept in its database, and replacing it.

The embedder's checkpoint (:func:`matcher.embedder.save_embedder` bytes) is a blob of the
catalog database, beside its fingerprint, spec and dimension in ``meta``; it changes only
together with every vector, in one transaction, so a catalog never mixes two embedders'
vectors.

Replacing it (:func:`reembed_products`): every stored reference image is embedded again
outside any transaction; the vectors, the new checkpoint and the new settings are then
swapped in with one transaction that also logs a ``reindex``
(:meth:`index.store.CatalogStore.replace_embedding`). Products added meanwhile are
embedded in turn before the swap; an ``add`` racing the swap is refused by its
transaction's fingerprint check and re-embedded by its caller.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from index.backend import CatalogBackend
from index.products import STORED_LIMITS, box_from_json, crop, load_product_image
from matcher.embedder import Embedder, embedder_fingerprint, load_embedder, save_embedder
from matcher.errors import CatalogError, CheckpointError

logger = logging.getLogger(__name__)

#: Name of the embedder checkpoint among the database's blobs.
EMBEDDER_BLOB = "embedder"


def embedder_settings(embedder: Embedder, *, vectors_version: int) -> dict[str, str]:
    """The ``meta`` entries describing ``embedder``."""
    return {
        "dim": str(embedder.dim),
        "embedder_fingerprint": embedder_fingerprint(embedder),
        "embedder_spec": json.dumps(embedder.spec.to_dict()),
        "vectors_version": str(vectors_version),
    }


def embedder_blobs(embedder: Embedder) -> dict[str, bytes]:
    """The embedder's checkpoint bytes, keyed for :meth:`CatalogBackend.initialise`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_embedder(Path(tmp) / "embedder.pt", embedder)
        return {EMBEDDER_BLOB: path.read_bytes()}


def stored_embedder(
    store: CatalogBackend, *, fingerprint: str, device: torch.device | str
) -> Embedder:
    """Load the catalog's embedder and check it against its recorded fingerprint.

    Raises:
        CatalogError: missing, unreadable or not matching the settings.
    """
    data = store.blob(EMBEDDER_BLOB)
    if data is None:
        raise CatalogError(f"catalog {store.location} has no stored embedder")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "embedder.pt"
        path.write_bytes(data)
        try:
            embedder = load_embedder(path, device=device)
        except CheckpointError as exc:
            raise CatalogError(f"the catalog's stored embedder is unreadable ({exc})") from None
    if embedder_fingerprint(embedder) != fingerprint:
        raise CatalogError("the catalog's stored embedder does not match its settings")
    return embedder


def reembed_products(
    store: CatalogBackend, embedder: Embedder, *, vectors_version: int, attempts: int = 5
) -> int:
    """Embed every product again with ``embedder`` and store the result atomically.

    Args:
        store: the catalog database.
        embedder: the new embedder.
        vectors_version: the catalog's new vectors version.
        attempts: swaps to try while products keep arriving.

    Returns:
        The ``change_seq`` of the logged ``reindex``.

    Raises:
        CatalogError: products kept arriving through every attempt.
    """
    values = embedder_settings(embedder, vectors_version=vectors_version)
    blobs = embedder_blobs(embedder)
    vectors: dict[int, np.ndarray] = {}
    pending: np.ndarray | None = None
    for _ in range(attempts):
        for rows in store.image_rows(pending):
            crops = []
            for row in rows:
                rgb, _, region = load_product_image(
                    row.product_id, row.png, box_from_json(row.box), limits=STORED_LIMITS
                )
                crops.append(crop(rgb, region))
            for row, vector in zip(rows, embedder.embed(crops), strict=True):
                vectors[row.seq] = vector
        logger.info("re-embedded %d products", len(vectors))
        result = store.replace_embedding(values, blobs, vectors)
        if isinstance(result, int):
            return result
        pending = result
    raise CatalogError("products kept arriving while the catalog was re-embedded; try again")
