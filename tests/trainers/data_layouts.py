"""Tiny datasets in every layout the pair sources read, written by the data tests.

Every object is a bright rectangle (grey level 230-255) on dark noise (0-90), so a test
can find it in any crop by thresholding at :data:`THRESHOLD`, whatever the colour, grey,
flip or blur augmentation did. Images are PNG (no JPEG ringing at the edges), except in
ImageNet-VID layout, whose frames are named ``.JPEG`` (written losslessly as PNG data;
OpenCV reads by content).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as coco_mask

THRESHOLD = 160
SIZE = (96, 128)  # (H, W) of every image


def draw(boxes: list[tuple[int, int, int, int]], *, seed: int, size=SIZE) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: dark noise with bright rectangles at integer xyxy boxes."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, (*size, 3), dtype=np.uint8)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = rng.integers(230, 256, 3, dtype=np.uint8)
    return image


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` losslessly (PNG data whatever the file extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buf.tobytes())


def bright(image_chw) -> np.ndarray:
    """``(H, W)`` bool: pixels of a ``(3, H, W)`` uint8 crop that belong to an object."""
    return np.asarray(image_chw).mean(axis=0) > THRESHOLD


def region_box(region: np.ndarray) -> np.ndarray:
    """xyxy pixel box enclosing a non-empty bool region."""
    ys, xs = np.nonzero(region)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def box_iou(a, b) -> float:
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


# -- COCO ---------------------------------------------------------------------------------


def write_coco(
    root: Path,
    *,
    num_images: int = 4,
    categories: tuple[tuple[int, str], ...] = ((1, "tools"), (2, "tools"), (3, "food")),
    segmentation: str = "polygon",
    products: bool = False,
) -> Path:
    """A COCO set: ``num_images`` images under ``root/images``, two objects each.

    Image ``k`` holds categories ``cats[k % n]`` and ``cats[(k + 1) % n]``; one extra crowd
    annotation and one 2-pixel box per set (both must be skipped). Segmentation:
    ``polygon``, ``rle`` (compressed, str counts), ``rle_list`` (uncompressed) or
    ``none``. With ``products`` a ``products`` list (one catalog photo per category,
    ``family_id`` = the supercategory) is added, as the synthetic generator writes.

    Returns:
        The annotation file (``root/annotations.json``).
    """
    h, w = SIZE
    cats = [c for c, _ in categories]
    images, annotations = [], []
    for k in range(num_images):
        boxes = [(8 + 2 * k, 10, 48 + 2 * k, 58), (70, 30 + k, 118, 70 + k)]
        name = f"{k + 1:04d}.png"
        write_image(root / "images" / name, draw(boxes, seed=k))
        images.append({"id": k + 1, "file_name": name, "width": w, "height": h})
        for j, (x0, y0, x1, y1) in enumerate(boxes):
            cat = cats[(k + j) % len(cats)]
            mask = np.zeros((h, w), np.uint8)
            mask[y0:y1, x0:x1] = 1
            if segmentation == "polygon":
                seg = [[x0, y0, x1, y0, x1, y1, x0, y1]]
            elif segmentation == "rle":
                rle = coco_mask.encode(np.asfortranarray(mask))
                seg = {"size": [h, w], "counts": rle["counts"].decode()}
            elif segmentation == "rle_list":
                flat = mask.flatten(order="F")
                change = np.flatnonzero(np.diff(flat)) + 1
                runs = np.diff(np.concatenate([[0], change, [len(flat)]]))
                seg = {"size": [h, w], "counts": ([0] if flat[0] else []) + runs.tolist()}
            else:
                seg = []
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": cat,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "segmentation": seg,
                    "iscrowd": 0,
                }
            )
    annotations.append(
        {"id": 1000, "image_id": 1, "category_id": cats[0], "bbox": [0, 0, 90, 90], "iscrowd": 1}
    )
    annotations.append(
        {"id": 1001, "image_id": 1, "category_id": cats[0], "bbox": [5, 5, 2, 2], "iscrowd": 0}
    )
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}", "supercategory": s} for c, s in categories],
    }
    if products:
        document["products"] = []
        for c, family in categories:
            photo = np.full((80, 80, 3), 250, np.uint8)
            photo[20:60, 25:55] = (60 + 40 * c) % 256
            write_image(root / "catalog" / f"{c:05d}.png", photo)
            document["products"].append(
                {"id": c, "name": f"p{c}", "family_id": family, "catalog": f"catalog/{c:05d}.png"}
            )
    path = root / "annotations.json"
    path.write_text(json.dumps(document))
    return path


# -- videos -------------------------------------------------------------------------------


def track_box(track: int, frame: int) -> tuple[int, int, int, int]:
    """The integer xyxy box of a test track in a frame (moves 2 px per frame)."""
    x0 = 10 + 2 * frame + 40 * (track % 2)
    y0 = 12 + 30 * (track // 2 % 2)
    return (x0, y0, x0 + 28, y0 + 24)


def write_got10k(root: Path, split: str = "train", *, sequences: int = 3, frames: int = 8):
    """GOT-10k layout; sequence ``s`` is absent in frame 3 (1-based) and its class is
    ``cls{s % 2}``; frame 5 of every sequence has a degenerate box."""
    names = []
    for s in range(sequences):
        name = f"GOT-10k_Train_{s + 1:06d}"
        names.append(name)
        folder = root / split / name
        lines, absent = [], []
        for f in range(frames):
            x0, y0, x1, y1 = track_box(s, f)
            write_image(folder / f"{f + 1:08d}.jpg", draw([(x0, y0, x1, y1)], seed=100 * s + f))
            if f == 4:
                lines.append(f"{x0},{y0},0.0000,{y1 - y0}")
            else:
                lines.append(f"{x0:.4f},{y0:.4f},{x1 - x0:.4f},{y1 - y0:.4f}")
            absent.append("1" if f == 2 else "0")
        (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
        (folder / "absence.label").write_text("\n".join(absent) + "\n")
        (folder / "meta_info.ini").write_text(
            f"[METAINFO]\nurl: x\nobject_class: cls{s % 2}\nmotion_class: walking\n"
        )
    (root / split / "list.txt").write_text("\n".join(names) + "\n")


def write_lasot(root: Path, *, classes=("cat", "dog"), per_class: int = 2, frames: int = 8):
    """LaSOT layout; frame 2 (1-based) fully occluded, frame 6 out of view."""
    t = 0
    for cls in classes:
        for n in range(1, per_class + 1):
            folder = root / cls / f"{cls}-{n}"
            lines = []
            for f in range(frames):
                x0, y0, x1, y1 = track_box(t, f)
                write_image(folder / "img" / f"{f + 1:08d}.jpg", draw([track_box(t, f)], seed=f))
                lines.append(f"{x0},{y0},{x1 - x0},{y1 - y0}")
            (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
            occ = ["1" if f == 1 else "0" for f in range(frames)]
            oov = ["1" if f == 5 else "0" for f in range(frames)]
            (folder / "full_occlusion.txt").write_text(",".join(occ))
            (folder / "out_of_view.txt").write_text(",".join(oov))
            t += 1


def write_vid(root: Path, split: str = "train", *, snippets: int = 2, frames: int = 6):
    """ImageNet-VID layout; each snippet has tracks 0 and 1; track 1 leaves after frame 3."""
    for s in range(snippets):
        rel = Path(f"ILSVRC2015_VID_{split}_0000") / f"ILSVRC2015_{split}_{s:08d}"
        for f in range(frames):
            tracks = [0, 1] if f <= 3 else [0]
            boxes = [track_box(2 * s + t, f) for t in tracks]
            write_image(root / "Data" / "VID" / split / rel / f"{f:06d}.JPEG", draw(boxes, seed=f))
            objects = "".join(
                f"<object><trackid>{t}</trackid><name>n0{t}</name><bndbox><xmax>{b[2]}</xmax>"
                f"<xmin>{b[0]}</xmin><ymax>{b[3]}</ymax><ymin>{b[1]}</ymin></bndbox>"
                "<occluded>0</occluded><generated>0</generated></object>"
                for t, b in zip(tracks, boxes, strict=True)
            )
            xml = (
                f"<annotation><folder>{rel}</folder><filename>{f:06d}</filename><size>"
                f"<width>{SIZE[1]}</width><height>{SIZE[0]}</height></size>{objects}</annotation>"
            )
            path = root / "Annotations" / "VID" / split / rel / f"{f:06d}.xml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(xml)
