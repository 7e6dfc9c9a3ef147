"""Rendered products ready for compositing, rendered once per process and cached.

A :class:`ProductBank` holds the specs of the catalog and of the foreign (non-catalog)
products, renders a product the first time a scene asks for it, and keeps a small
pyramid (full, 1/2, 1/4 ... resolution) of its premultiplied RGBA so that placing it at
any scale is a single small ``cv2.warpPerspective`` without aliasing. The cache is a
bounded LRU, so memory stays flat for large catalogs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from trainers.data.synth.designs import ProductSpec
from trainers.data.synth.packaging import render_product

_MIN_LEVEL_SIDE = 48


@dataclass(frozen=True)
class PreparedProduct:
    """A product rendered for compositing.

    Attributes:
        spec: the product.
        levels: pyramid of ``(h_k, w_k, 4)`` uint8 RGBA with *premultiplied* colour; level
            ``k`` has about ``1 / 2**k`` of the full resolution.
    """

    spec: ProductSpec
    levels: tuple[np.ndarray, ...]

    @property
    def aspect(self) -> float:
        """Width over height of the full-resolution rendering."""
        h, w = self.levels[0].shape[:2]
        return w / h


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` uint8 straight-alpha RGBA -> premultiplied uint8 RGBA (new array)."""
    out = rgba.copy()
    a = rgba[..., 3:4].astype(np.uint16)
    out[..., :3] = ((rgba[..., :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return out


def prepare(spec: ProductSpec, rgba: np.ndarray | None = None) -> PreparedProduct:
    """Render (unless ``rgba`` is given) and build the premultiplied pyramid of a product."""
    level = premultiply(render_product(spec) if rgba is None else rgba)
    levels = [level]
    while min(level.shape[:2]) >= 2 * _MIN_LEVEL_SIDE:
        level = cv2.pyrDown(level)
        levels.append(level)
    return PreparedProduct(spec=spec, levels=tuple(levels))


class ProductBank:
    """Specs of every product a scene may show, and an LRU cache of their renderings.

    Args:
        catalog: catalog products (ids ``>= 1``); these are annotated in scenes.
        foreign: non-catalog products (negative ids); shelf neighbours, never annotated.
        capacity: how many prepared products to keep.
    """

    def __init__(
        self,
        catalog: Sequence[ProductSpec],
        foreign: Sequence[ProductSpec],
        *,
        capacity: int = 256,
    ) -> None:
        self._specs = {s.product_id: s for s in (*catalog, *foreign)}
        self.catalog_ids = tuple(s.product_id for s in catalog)
        self.foreign_ids = tuple(s.product_id for s in foreign)
        self._capacity = capacity
        self._cache: OrderedDict[int, PreparedProduct] = OrderedDict()

    def spec(self, product_id: int) -> ProductSpec:
        """The spec of a product; ``KeyError`` for an unknown id."""
        return self._specs[product_id]

    def get(self, product_id: int) -> PreparedProduct:
        """The prepared product, rendered on first use."""
        hit = self._cache.get(product_id)
        if hit is not None:
            self._cache.move_to_end(product_id)
            return hit
        return self.put(prepare(self._specs[product_id]))

    def put(self, prepared: PreparedProduct) -> PreparedProduct:
        """Cache an already prepared product (e.g. one rendered for its catalog photo)."""
        self._cache[prepared.spec.product_id] = prepared
        self._cache.move_to_end(prepared.spec.product_id)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return prepared
