"""A small hand-made COCO-format set for the one-shot evaluation tests, and detections on it.

Layout (image id: instances as ``(category, [x, y, w, h], iscrowd)``), 80x64 images:

* category 4 has a 10-px instance in image 3 (too small to be a reference) and its only
  eligible one in image 5, so the pair (5, 4) has no reference elsewhere and is skipped;
* category 5 appears only in image 8, so (8, 5) is skipped too;
* image 4's category 3 is a crowd region only: neither present nor absent there;
* image 7 is empty.

Split file: unseen = {1, 2, 5}, seen = {3, 4}.

:func:`draw_plan` and :func:`exported_queries` draw queries on the set as loaded by the
``small`` fixture (``conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from trainers.evaluate.oneshot.queries import QueryPlan, draw_queries

HEIGHT, WIDTH = 64, 80
LAYOUT: dict[int, list[tuple[int, tuple[int, int, int, int], int]]] = {
    1: [(1, (4, 4, 20, 24), 0), (1, (40, 30, 24, 20), 0), (3, (10, 36, 18, 18), 0)],
    2: [(1, (30, 8, 22, 30), 0), (2, (2, 40, 30, 20), 0)],
    3: [(2, (50, 10, 20, 40), 0), (3, (4, 4, 24, 24), 0), (4, (30, 40, 10, 10), 0)],
    4: [(2, (8, 8, 30, 30), 0), (3, (44, 20, 30, 30), 1)],
    5: [(4, (20, 20, 30, 30), 0)],
    6: [(1, (10, 10, 40, 40), 0), (3, (50, 30, 20, 25), 0)],
    7: [],
    8: [(5, (5, 5, 30, 30), 0)],
}
SPLIT = {"unseen": [1, 2, 5], "seen": [3, 4]}
SKIPPED = {"unseen": [(8, 5)], "seen": [(5, 4)]}
#: Images with at least one queried present pair, per group (from LAYOUT and SKIPPED).
QUERIED_IMAGES = {"unseen": [1, 2, 3, 4, 6], "seen": [1, 3, 6]}


def rect_rle(box: tuple[float, float, float, float]) -> dict[str, Any]:
    """Compressed RLE (``str`` counts) of the filled rectangle ``[x, y, w, h]``."""
    x, y, w, h = (round(v) for v in box)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = 1
    rle = coco_mask.encode(np.asfortranarray(mask))
    return {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode()}


def make_dataset(root: Path) -> dict[str, Path]:
    """Write ``annotations.json``, ``split.json`` and ``images/`` under ``root``."""
    rng = np.random.default_rng(0)
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, annotations = [], []
    for image_id, instances in LAYOUT.items():
        name = f"{image_id:03d}.png"
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_dir / name)
        images.append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for cat, box, crowd in instances:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": list(box),
                    "area": box[2] * box[3],
                    "iscrowd": crowd,
                    "segmentation": rect_rle(box),
                }
            )
    categories = [{"id": c, "name": f"product {c}"} for c in range(1, 6)]
    ann = root / "annotations.json"
    ann.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    split = root / "split.json"
    split.write_text(json.dumps(SPLIT))
    return {"ann": ann, "split": split, "images": images_dir}


def ground_truth(image_id: int, category_id: int) -> list[tuple[int, int, int, int]]:
    """Non-crowd boxes of a category in an image."""
    return [box for cat, box, crowd in LAYOUT[image_id] if cat == category_id and not crowd]


def perfect_records(queries: list[dict[str, Any]], *, masks: bool = True) -> list[dict[str, Any]]:
    """Exact detections (box, mask, score 0.9) for every present query of an exported draw."""
    out = []
    for q in queries:
        if q["absent"]:
            continue
        for box in ground_truth(q["image_id"], q["category_id"]):
            rec = {
                "image_id": q["image_id"],
                "category_id": q["category_id"],
                "bbox": list(box),
                "score": 0.9,
                "run": q["run"],
            }
            if masks:
                rec["segmentation"] = rect_rle(box)
            out.append(rec)
    return out


def draw_plan(small: SimpleNamespace, *, runs: int = 3, seed: int = 0, **kwargs: Any) -> QueryPlan:
    """The queries of the ``small`` fixture's set and split (further ``draw_queries`` options
    in ``kwargs``)."""
    return draw_queries(small.dataset, small.split, runs=runs, seed=seed, **kwargs)


def exported_queries(plan: QueryPlan, small: SimpleNamespace) -> list[dict[str, Any]]:
    """The queries of ``plan`` in their exported JSON form (``--export-references``)."""
    return plan.to_dict(small.dataset)["queries"]
