"""Mask encodings: COCO run-length encoding for JSON, and polygons from masks.

Masks inside siammatch are ``HxW`` bool arrays in scene coordinates; they become COCO RLE
(``{"size": [h, w], "counts": str}``, column-major, as pycocotools writes it) only when a
result is serialised.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pycocotools import mask as coco_mask


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode an ``HxW`` bool mask as compressed COCO RLE with a ``str`` ``counts``."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode COCO RLE (compressed ``str``/``bytes`` or uncompressed list counts) to bool HxW."""
    counts = rle["counts"]
    height, width = (int(v) for v in rle["size"])
    if isinstance(counts, list):
        rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    elif isinstance(counts, str):
        rle = {"size": [height, width], "counts": counts.encode()}
    return coco_mask.decode(rle).astype(bool)


def largest_contour_polygon(mask: np.ndarray, *, min_area: float = 100.0) -> np.ndarray | None:
    """Rotated rectangle around the largest external contour of a mask.

    Args:
        mask: ``HxW`` bool or uint8 mask.
        min_area: contours with a smaller area (pixels) do not count.

    Returns:
        ``(4, 2)`` float32 corners from ``cv2.boxPoints(cv2.minAreaRect(contour))``, or
        ``None`` when no contour is large enough.
    """
    binary = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    areas = [cv2.contourArea(c) for c in contours]
    best = int(np.argmax(areas))
    if areas[best] <= min_area:
        return None
    return cv2.boxPoints(cv2.minAreaRect(contours[best].reshape(-1, 2))).astype(np.float32)
