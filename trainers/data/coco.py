"""Pairs from a COCO-format detection/segmentation set (COCO, LVIS, a shop's export, synth).

Three pair modes:

* ``instance`` — one annotation seen twice; the two crops differ by their jitter and
  augmentation (PySOT's COCO pairs).
* ``category`` — two instances of one category from *different* images (categories that
  occur in a single image give no positives, but still serve as search objects).
* ``catalog`` — a product set (a top-level ``"products"`` list with a ``catalog`` photo
  per product, as the synthetic generator writes): the product's catalog photo is the
  reference (its box is the product's ``catalog_box`` when given, else the foreground on
  the plain background, or the whole photo) and a scene instance of that product the
  search.

Crowd annotations (``iscrowd = 1``; the synthetic set marks instances less than 25 %
visible so), annotations without a valid box, and boxes with a side below
:data:`~trainers.data.sources.MIN_SIDE` are skipped. In a product set each category is a
product: identities are categories in every mode and look-alike groups are the product
families (``family_id``). Otherwise identities are annotations (``instance``) or
categories (``category``), and groups are categories or supercategories respectively.

Paths: ``file_name`` is relative to ``image_root`` (LVIS records have none: the last
component of ``coco_url`` is used, so all images go in one folder); catalog photos are
relative to the folder of the annotation file. Nothing is read but the JSON; images and
masks are read per item.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pycocotools import mask as coco_mask

from matcher.errors import ConfigError
from trainers.data.sources import MIN_SIDE, PairSource, View, draw_excluding

logger = logging.getLogger(__name__)

PairMode = Literal["instance", "category", "catalog"]
_NO_GROUP = -1
_CHECKED_FILES = 3


def load_coco_json(path: Path, *, name: str) -> dict[str, Any]:
    """Read and sanity-check a COCO annotation file.

    Args:
        path: the JSON file.
        name: the source's name, for error messages.

    Returns:
        The parsed document (``images``, ``annotations`` and ``categories`` lists).

    Raises:
        ConfigError: missing, unreadable, not JSON, or without those lists.
    """
    if not path.is_file():
        raise ConfigError(f"{name}: annotation file {path} does not exist")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read COCO annotations {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{name}: {path} is not a COCO annotation object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list):
            raise ConfigError(f"{name}: {path} has no {key!r} list; not a COCO annotation file")
    return document


def decode_segmentation(segmentation: Any, *, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as a binary mask.

    Args:
        segmentation: list of ``[x0, y0, x1, y1, ...]`` polygons, or an RLE dict.
        height / width: the image size.

    Returns:
        ``(height, width)`` uint8, 0/1.

    Raises:
        ValueError: an RLE whose size differs from the image's.
    """
    if isinstance(segmentation, list):
        rles = coco_mask.frPyObjects(segmentation, height, width)
        rle = coco_mask.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {
            "size": list(segmentation["size"]),
            "counts": counts.encode() if isinstance(counts, str) else counts,
        }
    if tuple(rle["size"]) != (height, width):
        raise ValueError(f"mask size {tuple(rle['size'])} differs from image {(height, width)}")
    return np.ascontiguousarray(coco_mask.decode(rle), dtype=np.uint8)


def _file_name(image: dict[str, Any]) -> str:
    """An image record's file, relative to the image folder (LVIS: ``coco_url``'s name)."""
    if "file_name" in image:
        return str(image["file_name"])
    return str(image["coco_url"]).rsplit("/", 1)[-1]


def _has_segmentation(seg: Any) -> bool:
    if isinstance(seg, list):
        return any(isinstance(p, list) and len(p) >= 6 for p in seg)
    return isinstance(seg, dict) and "counts" in seg and "size" in seg


def xyxy_box(bbox: Any, min_side: float) -> tuple[float, float, float, float] | None:
    """A COCO ``[x, y, w, h]`` as ``(x0, y0, x1, y1)``; ``None`` when it is malformed, not
    finite, or a side is below ``min_side``."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w < min_side or h < min_side:
        return None
    return (x, y, x + w, y + h)


class CocoSource(PairSource):
    """Pairs from one COCO-format annotation file.

    Args:
        document: the parsed annotation file (:func:`load_coco_json`).
        image_root: folder the images' ``file_name`` are relative to.
        annotation_dir: folder of the annotation file (catalog photos are relative to it).
        mode: ``instance``, ``category`` or ``catalog``.
        index: the source's index (first element of its identities).
        name: for errors and logs.
        min_side: boxes with a shorter side are skipped.

    Raises:
        ConfigError: malformed records, no usable annotation for ``mode``, ``catalog``
            mode without products, or missing image/catalog files (a few are checked).
    """

    def __init__(
        self,
        document: dict[str, Any],
        *,
        image_root: Path,
        annotation_dir: Path,
        mode: PairMode,
        index: int,
        name: str,
        min_side: float = MIN_SIDE,
    ) -> None:
        self.name = name
        self.index = index
        self.mode = mode
        if mode not in ("instance", "category", "catalog"):
            raise ConfigError(f"{name}: unknown pair_mode {mode!r}")
        if not image_root.is_dir():
            raise ConfigError(f"{name}: image folder {image_root} does not exist")
        try:
            files = {int(im["id"]): _file_name(im) for im in document["images"]}
            supercat = {
                int(c["id"]): c.get("supercategory") or None for c in document["categories"]
            }
            products = document.get("products") or []
            family = {int(p["id"]): p.get("family_id", p.get("family")) for p in products}
            catalog = {int(p["id"]): p.get("catalog") for p in products}
            catalog_box = {
                int(p["id"]): tuple(float(v) for v in p["catalog_box"])
                for p in products
                if p.get("catalog_box") is not None
            }
            if any(len(b) != 4 for b in catalog_box.values()):
                raise ValueError("a catalog_box is not four numbers (x0, y0, x1, y1)")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{name}: malformed COCO image/category/product record: {exc}"
            ) from exc
        is_catalog = bool(products)
        if mode == "catalog" and not is_catalog:
            raise ConfigError(
                f"{name}: pair_mode 'catalog' needs a product set (a top-level 'products' "
                "list with catalog photos, as the synthetic generator writes)"
            )
        image_ids = sorted(files)
        image_row = {image_id: row for row, image_id in enumerate(image_ids)}
        self._files = [str(image_root / files[i]) for i in image_ids]

        boxes, rows, cats, segs = [], [], [], []
        skipped = 0
        for ann in document["annotations"]:
            if not isinstance(ann, dict):
                raise ConfigError(f"{name}: an annotation is not an object: {ann!r:.80}")
            box = xyxy_box(ann.get("bbox"), min_side)
            row = image_row.get(ann.get("image_id"))
            cat = ann.get("category_id")
            if ann.get("iscrowd", 0) or ann.get("ignore", 0) or box is None or row is None:
                skipped += 1
                continue
            if cat not in supercat:
                raise ConfigError(f"{name}: annotation {ann.get('id')} has unknown category {cat}")
            boxes.append(box)
            rows.append(row)
            cats.append(int(cat))
            seg = ann.get("segmentation")
            segs.append(seg if _has_segmentation(seg) else None)
        self._boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self._rows = np.asarray(rows, np.int64)
        self._cats = np.asarray(cats, np.int64)
        self._segs = segs
        if is_catalog:
            self._ident = self._cats
            raw_groups = [family.get(c, supercat[c]) for c in cats]
        elif mode == "instance":  # the usable annotation's index (ids may be absent)
            self._ident = np.arange(len(cats), dtype=np.int64)
            raw_groups = list(cats)
        else:
            self._ident = self._cats
            raw_groups = [supercat[c] for c in cats]
        codes: dict[Hashable, int] = {}
        self._groups = np.asarray(
            [_NO_GROUP if g is None else codes.setdefault(g, len(codes)) for g in raw_groups],
            np.int64,
        )
        self._group_members = _members(self._groups)
        self._group_members.pop(_NO_GROUP, None)
        self._cat_members = _members(self._cats)
        self._catalog: dict[int, str] = {}
        self._catalog_box = catalog_box
        self._catalog_group: dict[int, int] = {}
        if mode == "catalog":
            for cat, rel in catalog.items():
                if rel:
                    self._catalog[cat] = str(annotation_dir / rel)
                    g = family.get(cat, supercat.get(cat))
                    self._catalog_group[cat] = _NO_GROUP if g is None else codes.get(g, _NO_GROUP)
        self._candidates = self._positive_candidates()
        self.num_identities = len(np.unique(self._ident))
        if len(self._candidates) == 0:
            raise ConfigError(
                f"{name}: no usable annotations for pair_mode {mode!r} "
                f"({len(document['annotations'])} annotations, {skipped} skipped as crowd, "
                f"too small (< {min_side} px) or without image)"
            )
        self._check_files()
        logger.info(
            "%s: %d objects (%d skipped), %d identities, %d %s-mode positives",
            name,
            len(self._boxes),
            skipped,
            self.num_identities,
            len(self._candidates),
            mode,
        )

    def _positive_candidates(self) -> np.ndarray:
        everything = np.arange(len(self._boxes))
        if self.mode == "instance":
            return everything
        if self.mode == "catalog":
            keep = np.fromiter((c in self._catalog for c in self._cats), bool, len(self._cats))
            return everything[keep]
        multi = {c for c, m in self._cat_members.items() if len(np.unique(self._rows[m])) >= 2}
        keep = np.fromiter((c in multi for c in self._cats), bool, len(self._cats))
        return everything[keep]

    def _check_files(self) -> None:
        firsts = [self._files[r] for r in np.unique(self._rows)[:_CHECKED_FILES]]
        firsts += list(self._catalog.values())[:_CHECKED_FILES]
        for path in firsts:
            if not Path(path).is_file():
                raise ConfigError(f"{self.name}: file {path} does not exist")

    def __len__(self) -> int:
        """Number of usable objects (annotations)."""
        return len(self._boxes)

    def view(self, k: int) -> View:
        """The view of usable annotation ``k``."""
        return View(
            image=self._files[self._rows[k]],
            box=tuple(float(v) for v in self._boxes[k]),
            identity=(self.index, int(self._ident[k])),
            group=int(self._groups[k]) if self._groups[k] != _NO_GROUP else None,
            segmentation=self._segs[k],
        )

    def catalog_view(self, category: int) -> View:
        """The catalog photo of product ``category`` as a reference view."""
        group = self._catalog_group.get(category, _NO_GROUP)
        return View(
            image=self._catalog[category],
            box=self._catalog_box.get(category),
            identity=(self.index, category),
            group=None if group == _NO_GROUP else group,
        )

    def positive(self, rng: np.random.Generator) -> tuple[View, View]:
        a = int(self._candidates[rng.integers(len(self._candidates))])
        if self.mode == "instance":
            return self.view(a), self.view(a)
        if self.mode == "catalog":
            return self.catalog_view(int(self._cats[a])), self.view(a)
        members = self._cat_members[int(self._cats[a])]
        b = int(members[draw_excluding(rng, self._rows[members], self._rows[a])])
        return self.view(a), self.view(b)

    def reference(self, rng: np.random.Generator) -> View:
        a = int(self._candidates[rng.integers(len(self._candidates))])
        if self.mode == "catalog":
            return self.catalog_view(int(self._cats[a]))
        return self.view(a)

    def search(self, rng: np.random.Generator, *, exclude: tuple[Hashable, ...] | None) -> View:
        key = exclude[1] if exclude is not None and exclude[0] == self.index else None
        return self.view(draw_excluding(rng, self._ident, key))

    def distractor(self, rng: np.random.Generator, reference: View) -> View | None:
        if reference.group is None or reference.identity[0] != self.index:
            return None
        members = self._group_members.get(int(reference.group))
        if members is None:
            return None
        try:
            k = draw_excluding(rng, self._ident[members], reference.identity[1])
        except LookupError:
            return None
        return self.view(int(members[k]))


def _members(keys: np.ndarray) -> dict[int, np.ndarray]:
    """``key -> indices holding it`` for an integer key array."""
    if len(keys) == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    values, starts = np.unique(keys[order], return_index=True)
    return {int(v): part for v, part in zip(values, np.split(order, starts[1:]), strict=True)}
