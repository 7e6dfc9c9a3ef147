"""Adding products to a catalog: checking the items, and what one transaction writes.

:func:`check_items` checks a batch given to :meth:`~index.catalog.Catalog.add_many` (item
shape, ids, metadata, duplicates in the batch and in the catalog) before anything is read
or written. :func:`new_products` embeds loaded reference images and builds the rows one
:meth:`~index.store.CatalogStore.insert` writes (with the matcher's template features when
the catalog has a matcher); :func:`added_products` turns those rows into the
:class:`~index.products.Product` records ``add`` returns.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from index.backend import CatalogBackend
from index.product_rows import NewProduct
from index.products import (
    STORED_LIMITS,
    Product,
    box_to_json,
    crop,
    encode_png,
    validate_metadata,
    validate_product_id,
)
from index.templates import TemplateCache, features_to_bytes
from matcher.embedder import Embedder
from matcher.errors import DuplicateProductError, InvalidArgumentError
from matcher.images import Box, ImageLike
from matcher.siamese_matcher import SiameseMatcher
from matcher.structures import Reference

logger = logging.getLogger(__name__)

#: One product to add: ``(product_id, image, metadata, box)``.
Item = tuple[str, ImageLike, dict | None, Box | None]

#: A reference image as :func:`~index.products.load_product_image` returns it:
#: ``(rgb HxWx3 uint8, box or None, region)``, boxes ``(x0, y0, x1, y1)`` float pixels.
Loaded = tuple[np.ndarray, Box | None, Box]


def check_items(items: list[Item], store: CatalogBackend) -> list[tuple[str, str]]:
    """Check the shape, id and metadata of every item, and that no id repeats or exists.

    Args:
        items: the ``(product_id, image, metadata, box)`` items.
        store: the catalog database, for the ids it holds.

    Returns:
        ``(product_id, metadata JSON text)`` per item.

    Raises:
        InvalidArgumentError: a malformed item, a bad id or metadata, or an id given twice.
        DuplicateProductError: an id already in the catalog.
    """
    checked = []
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 4:
            raise InvalidArgumentError(
                f"item {i}: expected a (product_id, image, metadata, box) tuple"
            )
        checked.append((validate_product_id(item[0]), validate_metadata(item[2])))
    ids = [pid for pid, _ in checked]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(pid for pid in ids if pid in seen or seen.add(pid))
        raise InvalidArgumentError(f"product id {dup!r} appears more than once")
    taken = store.existing(ids)
    if taken:
        raise DuplicateProductError(f"product {min(taken)!r} is already in the catalog")
    return checked


def new_products(
    checked: list[tuple[str, str]],
    loaded: list[Loaded],
    *,
    embedder: Embedder,
    matcher: SiameseMatcher | None,
    templates: TemplateCache,
) -> list[NewProduct]:
    """Embed the loaded images and build the rows to insert.

    Args:
        checked: ``(product_id, metadata JSON text)`` per product.
        loaded: the product's loaded reference image, per product.
        embedder: the embedder whose vectors are stored.
        matcher: the matcher whose template features are cached, or ``None``.
        templates: the catalog's template cache (for the features' key).

    Returns:
        One :class:`~index.product_rows.NewProduct` per product, all created now.
    """
    vectors = embedder.embed([crop(rgb, region) for rgb, _, region in loaded])
    now = time.time()
    items = []
    for (pid, text), (rgb, box, region), vector in zip(checked, loaded, vectors, strict=True):
        template = None
        if matcher is not None:
            reference = Reference.from_image(rgb, region, id=pid, limits=STORED_LIMITS)
            feats = matcher.encode_reference(reference)
            template = (templates.key(matcher), features_to_bytes(feats))
        items.append(
            NewProduct(
                product_id=pid,
                metadata=text,
                box=box_to_json(box),
                created_at=now,
                height=rgb.shape[0],
                width=rgb.shape[1],
                png=encode_png(rgb),
                vector=vector,
                template=template,
            )
        )
    return items


def added_products(items: list[NewProduct], loaded: list[Loaded]) -> list[Product]:
    """The records of the products ``items`` added (``loaded``: their loaded images)."""
    return [
        Product(
            product_id=it.product_id,
            metadata=json.loads(it.metadata),
            box=box,
            created_at=it.created_at,
            image_png=it.png,
            image_size=(it.height, it.width),
        )
        for it, (_, box, _) in zip(items, loaded, strict=True)
    ]
