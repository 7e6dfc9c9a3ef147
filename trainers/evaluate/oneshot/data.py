"""The one-shot test set: a COCO-format annotation file indexed for the protocol.

:func:`load_dataset` validates the file (a one-line error naming the first bad record),
fills ``iscrowd`` (0) and ``area`` (box area) where the file leaves them out, and indexes
which categories are present in each image (non-crowd instances) and which are annotated
at all (crowd regions included); the absent-category pass needs the latter.
"""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.errors import InvalidArgumentError


@dataclass(frozen=True, eq=False)
class OneShotDataset:
    """A COCO-format annotation file indexed for the one-shot protocol.

    Attributes:
        path: the annotation file.
        coco: pycocotools index of the annotations (``iscrowd`` and ``area`` filled in
            where the file left them out).
        images: image id -> COCO image record (``file_name``, ``width``, ``height`` ...).
        categories: category id -> name.
        present: image id -> categories with at least one non-crowd instance in it.
        annotated: image id -> categories with any annotation in it (crowd included).
        has_masks: every annotation carries a ``segmentation``.
        images_dir: the folder named by ``info.images_dir`` (synthetic sets), next to the
            annotation file, or ``None``.
    """

    path: str
    coco: Any
    images: dict[int, dict[str, Any]]
    categories: dict[int, str]
    present: dict[int, frozenset[int]]
    annotated: dict[int, frozenset[int]]
    has_masks: bool
    images_dir: str | None


# -- loading ----------------------------------------------------------------------------


def load_dataset(path: str | os.PathLike[str]) -> OneShotDataset:
    """Read and index a COCO-format annotation file.

    Raises:
        InvalidArgumentError: the file is missing, not JSON, or not COCO detection format
            (the message names the first offending record).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"annotation file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(
            f"annotation file {path!r} is not readable JSON: {exc}"
        ) from None
    return index_dataset(data, path=path)


def index_dataset(data: Any, *, path: str) -> OneShotDataset:
    """Validate and index an already parsed COCO document (see :func:`load_dataset`)."""
    from pycocotools.coco import COCO

    where = f"annotation file {path!r}"
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where}: expected a COCO object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InvalidArgumentError(f"{where}: the {key!r} list is missing")
    images: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(data["images"]):
        _require(img, ("id", "file_name", "width", "height"), f"{where}: images[{i}]")
        images[int(img["id"])] = img
    categories = {}
    for i, cat in enumerate(data["categories"]):
        _require(cat, ("id",), f"{where}: categories[{i}]")
        categories[int(cat["id"])] = str(cat.get("name", cat["id"]))
    annotations = []
    for i, ann in enumerate(data["annotations"]):
        what = f"{where}: annotations[{i}]"
        _require(ann, ("id", "image_id", "category_id", "bbox"), what)
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise InvalidArgumentError(f"{what}: bbox must be [x, y, w, h]")
        if ann["image_id"] not in images:
            raise InvalidArgumentError(f"{what}: unknown image_id {ann['image_id']!r}")
        if ann["category_id"] not in categories:
            raise InvalidArgumentError(f"{what}: unknown category_id {ann['category_id']!r}")
        filled = dict(ann)
        filled["iscrowd"] = int(ann.get("iscrowd", 0))
        filled.setdefault("area", float(bbox[2]) * float(bbox[3]))
        annotations.append(filled)
    document = {**data, "annotations": annotations}
    coco = COCO()
    coco.dataset = document
    with redirect_stdout(io.StringIO()):
        coco.createIndex()
    present: dict[int, set[int]] = defaultdict(set)
    annotated: dict[int, set[int]] = defaultdict(set)
    for ann in annotations:
        annotated[ann["image_id"]].add(ann["category_id"])
        if not ann["iscrowd"]:
            present[ann["image_id"]].add(ann["category_id"])
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    images_dir = info.get("images_dir")
    return OneShotDataset(
        path=path,
        coco=coco,
        images=images,
        categories=categories,
        present={i: frozenset(present.get(i, ())) for i in images},
        annotated={i: frozenset(annotated.get(i, ())) for i in images},
        has_masks=bool(annotations) and all("segmentation" in a for a in annotations),
        images_dir=(str(Path(path).parent / images_dir) if isinstance(images_dir, str) else None),
    )


def _require(record: Any, keys: Sequence[str], what: str) -> None:
    if not isinstance(record, dict):
        raise InvalidArgumentError(f"{what} is not an object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise InvalidArgumentError(f"{what} lacks {', '.join(repr(k) for k in missing)}")
    for key in keys:
        if key.endswith("id") and (
            isinstance(record[key], bool) or not isinstance(record[key], int)
        ):
            raise InvalidArgumentError(f"{what}: {key} must be an integer")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and np.isfinite(value)


def image_path(dataset: OneShotDataset, images_dir: str | os.PathLike[str], image_id: int) -> str:
    """Path of image ``image_id`` under ``images_dir``."""
    return os.path.join(os.fspath(images_dir), dataset.images[image_id]["file_name"])


def check_image_files(
    dataset: OneShotDataset, images_dir: str | os.PathLike[str], image_ids: Iterable[int]
) -> None:
    """Fail before any work when an image file is missing.

    Raises:
        InvalidArgumentError: ``images_dir`` is not a folder or a file is missing.
    """
    if not os.path.isdir(images_dir):
        raise InvalidArgumentError(f"images folder {os.fspath(images_dir)!r} does not exist")
    missing = [
        i for i in sorted(set(image_ids)) if not os.path.isfile(image_path(dataset, images_dir, i))
    ]
    if missing:
        first = image_path(dataset, images_dir, missing[0])
        raise InvalidArgumentError(
            f"{len(missing)} image file(s) missing under {os.fspath(images_dir)!r}, e.g. {first!r}"
        )
