"""A tiny hand-built set in the real-photo set's format, for the real-protocol tests.

Three 240x320 cluttered scenes with scikit-image products pasted unchanged at known boxes,
four references (three on white with no box, one cut out of a cluttered photo by its box)
and trials of every split:

* test: four present trials (``two_view`` x2, ``jpeg``, ``several`` with two copies of
  the rocket) and three absent ones (``absent``, ``absent_colour_lookalike``,
  ``absent_shape_lookalike``);
* val: one present trial (id 8); train: one present trial (id 9).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from matcher.mask_codec import encode_rle
from tests.helpers import clutter_scene, paste, product_image

SCENE_HW = (240, 320)
# reference id -> (product, box in its photo or None: a white photo, product foreground)
REFERENCES = {1: ("astronaut", None), 2: ("coffee", (40, 40, 140, 140)), 3: ("rocket", None)}
REFERENCES[4] = ("chelsea", None)
# scene id -> [(reference id, box xyxy)]
SCENES = {
    1: [(1, (20, 30, 120, 130)), (2, (180, 60, 280, 160))],
    2: [(3, (30, 40, 130, 140)), (3, (190, 100, 290, 200))],
    3: [(2, (110, 70, 210, 170))],
}
# trial id -> (scene id, reference id, category, split); present iff the product is there
TRIALS = {
    1: (1, 1, "two_view", "test"),
    2: (1, 2, "jpeg", "test"),
    3: (2, 3, "several", "test"),
    4: (3, 2, "two_view", "test"),
    5: (1, 4, "absent", "test"),
    6: (2, 1, "absent_colour_lookalike", "test"),
    7: (3, 3, "absent_shape_lookalike", "test"),
    8: (3, 2, "two_view", "val"),
    9: (1, 1, "two_view", "train"),
}


def box_mask(box: tuple[int, int, int, int], hw: tuple[int, int] = SCENE_HW) -> np.ndarray:
    mask = np.zeros(hw, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def tiny_real_document() -> dict[str, Any]:
    """The annotations of the tiny set (see the module docstring)."""
    height, width = SCENE_HW
    images = [
        {
            "id": sid,
            "file_name": f"scenes/{sid:06d}.png",
            "height": height,
            "width": width,
            "split": "test",
        }
        for sid in SCENES
    ]
    references = [
        {
            "id": rid,
            "file_name": f"references/{rid:06d}.png",
            "box": None if box is None else list(box),
            "split": "test",
            "source": "scikit-image",
        }
        for rid, (_, box) in REFERENCES.items()
    ]
    trials = []
    for tid, (sid, rid, category, split) in TRIALS.items():
        boxes = [list(box) for r, box in SCENES[sid] if r == rid]
        trials.append(
            {
                "id": tid,
                "image_id": sid,
                "reference_id": rid,
                "present": bool(boxes),
                "category": category,
                "split": split,
                "boxes": boxes,
                "masks": [encode_rle(box_mask(tuple(b))) for b in boxes] if boxes else None,
            }
        )
    return {
        "info": {
            "name": "siammatch-real",
            "version": 1,
            "seed": 7,
            "sources": {"scikit-image": "test photos"},
            "categories": sorted({c for _, _, c, _ in TRIALS.values()}),
        },
        "images": images,
        "references": references,
        "trials": trials,
    }


def write_tiny_real_set(root: Path) -> Path:
    """Write the tiny set's images and ``annotations.json`` under ``root``; returns it."""
    root = Path(root)
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    (root / "references").mkdir(exist_ok=True)
    for rid, (name, box) in REFERENCES.items():
        if box is None:
            photo = np.full((260, 260, 3), 255, np.uint8)
            photo[30:230, 30:230] = product_image(name)
        else:
            photo = paste(clutter_scene(180, 180, seed=100 + rid), product_image(name), box)
        Image.fromarray(photo).save(root / "references" / f"{rid:06d}.png")
    for sid, items in SCENES.items():
        scene = clutter_scene(*SCENE_HW, seed=sid)
        for rid, box in items:
            scene = paste(scene, product_image(REFERENCES[rid][0]), box)
        Image.fromarray(scene).save(root / "scenes" / f"{sid:06d}.png")
    (root / "annotations.json").write_text(json.dumps(tiny_real_document()))
    return root
