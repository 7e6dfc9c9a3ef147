"""A contact sheet of a synthetic dataset: catalog photos and scenes with their masks.

For looking at what the generator makes (and for ``docs/synth_example.png``): the top
rows show catalog photos family by family, so lookalikes sit side by side; below are
scenes of every layout with each annotated instance's visible mask tinted, its box drawn
and its product id printed (crowd/ignore instances in grey).

    python -m trainers.data.synth.preview DATASET_DIR OUT.png [--scenes 6] [--catalog 8]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as coco_mask

_PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
]


def _read(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def draw_annotations(image: np.ndarray, annotations: Sequence[dict[str, Any]]) -> np.ndarray:
    """Tint each annotation's mask, draw its box and category id.

    Args:
        image: ``(H, W, 3)`` uint8 RGB; not modified.
        annotations: COCO annotations of this image (RLE ``segmentation``, ``bbox`` xywh).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    out = image.astype(np.float32)
    boxes = []
    for ann in annotations:
        rle = dict(ann["segmentation"])
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
        mask = coco_mask.decode(rle).astype(bool)
        colour = (160, 160, 160) if ann["iscrowd"] else _PALETTE[ann["category_id"] % 10]
        out[mask] = out[mask] * 0.5 + np.float32(colour) * 0.5
        boxes.append((ann, colour))
    canvas = np.clip(out, 0, 255).astype(np.uint8)
    for ann, colour in boxes:
        x, y, w, h = ann["bbox"]
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), colour, 2)
        label = f"#{ann['category_id']}"
        cv2.putText(
            canvas, label, (x + 3, y + 16), cv2.FONT_HERSHEY_DUPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA
        )
        cv2.putText(
            canvas, label, (x + 3, y + 16), cv2.FONT_HERSHEY_DUPLEX, 0.55, colour, 1, cv2.LINE_AA
        )
    return canvas


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
    scale = 0.42
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > (
        tile.shape[1] - 6
    ):
        scale -= 0.02
    cv2.putText(bar, text, (3, 15), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([tile, bar], axis=0)


def _grid(tiles: list[np.ndarray], columns: int, gap: int = 6) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 245, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return sheet


def contact_sheet(
    dataset_dir: str | Path, *, num_catalog: int = 8, num_scenes: int = 6, width: int = 1440
) -> np.ndarray:
    """Catalog photos of products in the scenes (with their lookalikes) above annotated
    scenes of every layout.

    Args:
        dataset_dir: a folder written by :func:`trainers.data.synth.generate`.
        num_catalog: catalog photos to show.
        num_scenes: scenes to show, alternating between layouts.
        width: sheet width, pixels.

    Returns:
        ``(H, width, 3)`` uint8 RGB.
    """
    root = Path(dataset_dir)
    data = json.loads((root / "annotations.json").read_text())
    info = data["info"]
    by_layout: dict[str, list[dict]] = {}
    for image in data["images"]:
        by_layout.setdefault(image["layout"], []).append(image)
    chosen: list[dict] = []
    pools = [by_layout[k] for k in sorted(by_layout)]
    while len(chosen) < num_scenes and any(pools):
        for pool in pools:
            if pool and len(chosen) < num_scenes:
                chosen.append(pool.pop(0))
    anns: dict[int, list] = {}
    for ann in data["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    products = _shown_products(data["products"], chosen, anns, num_catalog)
    per_row = min(max(len(products), 1), 8)
    side = (width - 6 * (per_row + 1)) // per_row
    thumbs = []
    for p in products:
        img = cv2.resize(_read(root / p["catalog"]), (side, side), interpolation=cv2.INTER_AREA)
        thumbs.append(_caption(img, f"#{p['id']} {p['name']}"))
    columns = 3
    tile_w = (width - 6 * (columns + 1)) // columns
    tiles = []
    for image in chosen:
        scene = _read(root / info["images_dir"] / image["file_name"])
        drawn = draw_annotations(scene, anns.get(image["id"], []))
        tile_h = round(drawn.shape[0] * tile_w / drawn.shape[1])
        drawn = cv2.resize(drawn, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        n = len(anns.get(image["id"], []))
        tiles.append(
            _caption(
                drawn,
                f"{image['file_name']}  {image['layout']} / {image['background']}  {n} instance(s)",
            )
        )
    parts = [_grid(thumbs, per_row)] if thumbs else []
    if tiles:
        parts.append(_grid(tiles, columns))
    sheet_w = max(p.shape[1] for p in parts)
    parts = [
        np.pad(p, ((0, 0), (0, sheet_w - p.shape[1]), (0, 0)), constant_values=245) for p in parts
    ]
    return np.concatenate(parts, axis=0)


def _shown_products(
    products: list[dict], scenes: list[dict], anns: dict[int, list], count: int
) -> list[dict]:
    """Products seen in the shown scenes, each followed by its lookalikes, up to ``count``."""
    by_id = {p["id"]: p for p in products}
    seen: dict[int, int] = {}
    for image in scenes:
        for ann in anns.get(image["id"], []):
            seen[ann["category_id"]] = seen.get(ann["category_id"], 0) + 1
    order = sorted(seen, key=lambda i: (-seen[i], i)) + [p["id"] for p in products]
    shown: list[dict] = []
    for pid in order:
        for member in (pid, *sorted(by_id[pid]["lookalikes"])):
            if len(shown) < count and by_id[member] not in shown:
                shown.append(by_id[member])
    return shown


def main(argv: Sequence[str] | None = None) -> int:
    """Write the contact sheet of a dataset to a PNG file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="dataset folder (with annotations.json)")
    parser.add_argument("out", help="output PNG file")
    parser.add_argument("--scenes", type=int, default=6, help="scenes to show")
    parser.add_argument("--catalog", type=int, default=8, help="catalog photos to show")
    args = parser.parse_args(argv)
    sheet = contact_sheet(args.dataset, num_catalog=args.catalog, num_scenes=args.scenes)
    cv2.imwrite(args.out, np.ascontiguousarray(sheet[:, :, ::-1]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
