"""The product rows the catalog database reads and writes.

:class:`ProductRow` is a ``products`` row as read back (optionally with its image);
:class:`NewProduct` is everything one ``add`` writes to the ``products``, ``vectors``,
``images`` and ``templates`` tables (:meth:`index.store.CatalogStore.insert`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductRow:
    """A ``products`` row, optionally with its image.

    Attributes:
        seq: FAISS id.
        product_id, metadata, box, created_at, height, width: stored values (JSON text
            for ``metadata`` and ``box``).
        png: the image bytes, or ``None`` when not read.
    """

    seq: int
    product_id: str
    metadata: str
    box: str | None
    created_at: float
    height: int
    width: int
    png: bytes | None = None


@dataclass(frozen=True)
class NewProduct:
    """Everything one ``add`` writes.

    Attributes:
        vector: ``(dim,)`` float32.
        template: ``(key, features)`` of the cached template features, or ``None``.
    """

    product_id: str
    metadata: str
    box: str | None
    created_at: float
    height: int
    width: int
    png: bytes
    vector: np.ndarray
    template: tuple[str, bytes] | None = None
