"""What the real-photo one-shot set (:mod:`trainers.evaluate.real_set`) cuts out of its
photographs: planar "products" and the stereo pair's object regions.

Both are pure functions of the pixels (no random numbers): :func:`photo_products` ranks
rectangular windows of a photograph by gradient energy and keeps the most textured, the
smoothest and a few small detail windows; :func:`stereo_regions` keeps the textured,
single-depth windows of the motorcycle pair's left view, and :func:`stereo_truth_box`
moves one into the right view by its ground-truth disparity. Boxes are ``(x0, y0, x1, y1)``
pixel edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Product kinds: strongly textured crops, smooth crops (where keypoint matchers fail),
#: and small detail crops.
KINDS = ("textured", "low_texture", "small")
#: Crop sides as fractions of a photograph's shorter side, per kind.
_KIND_SIDES = {"textured": (0.25, 0.33, 0.42), "low_texture": (0.25, 0.33), "small": (0.12,)}
#: How many crops of each kind one photograph gives at most.
_KIND_COUNT = {"textured": 4, "low_texture": 2, "small": 2}
#: Crop aspect ratios (width / height).
ASPECTS = (1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3)
#: A low-texture crop has a mean gradient magnitude in this range (Sobel, 0-255 grey):
#: smooth, but not a flat patch ...
_LOW_GRADIENT = (1.5, 14.0)
#: ... and some content: a grey-level standard deviation of at least this.
_LOW_MIN_STD = 10.0


@dataclass(frozen=True)
class Product:
    """A rectangular crop of a photograph used as a planar product.

    Attributes:
        key: ``"<source>/<kind>/<n>"``, unique.
        source: name of the photograph.
        kind: one of :data:`KINDS`.
        box: ``(x0, y0, x1, y1)`` int pixels in the working-resolution photograph.
        aspect: index into :data:`ASPECTS`.
        image: ``HxWx3`` uint8 RGB crop (the product's face).
        gradient: mean Sobel gradient magnitude of the crop.
        saturation: mean HSV saturation (0-255) of the crop.
        mean_lab: mean CIELAB colour (OpenCV 8-bit scale), for shape look-alikes.
    """

    key: str
    source: str
    kind: str
    box: tuple[int, int, int, int]
    aspect: int
    image: np.ndarray
    gradient: float
    saturation: float
    mean_lab: tuple[float, float, float]


def _integral(values: np.ndarray) -> np.ndarray:
    return cv2.integral(values.astype(np.float64))


def _window_means(integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = boxes.T
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return total / ((x1 - x0) * (y1 - y0))


def _candidates(height: int, width: int, sides: tuple[float, ...]) -> np.ndarray:
    """Every grid window, ``(N, 5)`` int: x0, y0, x1, y1, aspect index."""
    short = min(height, width)
    rows = []
    for side in sides:
        for a, aspect in enumerate(ASPECTS):
            w = round(side * short * np.sqrt(aspect))
            h = round(side * short / np.sqrt(aspect))
            if w > width or h > height:
                continue
            stride = max(4, min(w, h) // 4)
            for y in range(0, height - h + 1, stride):
                for x in range(0, width - w + 1, stride):
                    rows.append((x, y, x + w, y + h, a))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 5)


def _overlaps(box: np.ndarray, taken: list[np.ndarray]) -> bool:
    return any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken)


def _describe(image: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).mean(axis=0)
    return float(hsv[:, :, 1].mean()), (float(lab[0]), float(lab[1]), float(lab[2]))


def photo_products(name: str, photo: np.ndarray) -> list[Product]:
    """The products cut from one photograph: a pure function of its pixels.

    Grid windows of every kind's sizes and of every aspect are scored by mean Sobel
    gradient magnitude (grey, 0-255). Textured and small products are the highest scoring
    windows, low-texture ones the lowest scoring among windows with some content (grey std
    at least 10, at most 10 % of pixels under 12 or over 245) and a mean gradient of 1.5 to
    14;
    windows of one kind never overlap, windows of different kinds may.
    """
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    grad_int = _integral(np.sqrt(gx * gx + gy * gy) / 4.0)
    grey_int = _integral(grey)
    sq_int = _integral(grey * grey)
    clip_int = _integral(((grey < 12) | (grey > 245)).astype(np.float32))
    height, width = grey.shape
    products = []
    for kind in KINDS:
        cand = _candidates(height, width, _KIND_SIDES[kind])
        boxes = cand[:, :4]
        gradient = _window_means(grad_int, boxes)
        clipped = _window_means(clip_int, boxes)
        if kind == "low_texture":
            mean = _window_means(grey_int, boxes)
            std = np.sqrt(np.maximum(_window_means(sq_int, boxes) - mean * mean, 0.0))
            lo, hi = _LOW_GRADIENT
            smooth = (gradient >= lo) & (gradient < hi)
            keep = (std >= _LOW_MIN_STD) & (clipped <= 0.1) & smooth
            order = np.lexsort((np.arange(len(cand)), gradient))
        else:
            keep = clipped <= 0.5
            order = np.lexsort((np.arange(len(cand)), -gradient))
        taken: list[np.ndarray] = []
        for i in order:
            if not keep[i] or _overlaps(boxes[i], taken):
                continue
            taken.append(boxes[i])
            x0, y0, x1, y1 = (int(v) for v in boxes[i])
            crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
            saturation, mean_lab = _describe(crop)
            products.append(
                Product(
                    key=f"{name}/{kind}/{len(taken) - 1}",
                    source=name,
                    kind=kind,
                    box=(x0, y0, x1, y1),
                    aspect=int(cand[i, 4]),
                    image=crop,
                    gradient=float(gradient[i]),
                    saturation=saturation,
                    mean_lab=mean_lab,
                )
            )
            if len(taken) == _KIND_COUNT[kind]:
                break
    return products


# -- the stereo pair ------------------------------------------------------------------------

_REGION_SIDES = (72, 96, 128, 160)
_REGION_MIN_VALID = 0.97
_REGION_MAX_IOU = 0.2
#: A region's known disparities span at most this share of its width: one surface at
#: about one depth, so its right-view image is the region shifted (and not stretched by
#: a few far-away pixels).
_REGION_MAX_SPREAD = 0.15
#: At most this many two-view regions (hence two-view trials) exist.
MAX_STEREO_REGIONS = 48


def stereo_regions(left: np.ndarray, disparity: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Object regions of the left view, most textured first: ``(x0, y0, x1, y1)`` int.

    Grid windows (sides 72-160 px, every aspect) with known disparity on at least 97 % of
    their pixels, known disparities spanning at most 15 % of their width,
    and a right-view image inside the right view, ranked by mean gradient magnitude, kept
    greedily while their IoU with every kept one is under 0.2.
    """
    grey = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    grad_int = _integral(np.sqrt(gx * gx + gy * gy) / 4.0)
    valid = np.isfinite(disparity)
    valid_int = _integral(valid.astype(np.float32))
    x_right = np.where(valid, np.arange(left.shape[1])[None, :] - disparity, np.nan)
    height, width = grey.shape
    cand = _candidates(height, width, tuple(s / min(height, width) for s in _REGION_SIDES))
    boxes = cand[:, :4]
    gradient = _window_means(grad_int, boxes)
    coverage = _window_means(valid_int, boxes)
    order = np.lexsort((np.arange(len(cand)), -gradient))
    kept: list[tuple[int, int, int, int]] = []
    for i in order:
        if coverage[i] < _REGION_MIN_VALID:
            continue
        x0, y0, x1, y1 = (int(v) for v in boxes[i])
        if any(_iou((x0, y0, x1, y1), k) >= _REGION_MAX_IOU for k in kept):
            continue
        xs = x_right[y0:y1, x0:x1]
        if np.nanmin(xs) < 0 or np.nanmax(xs) + 1 > width:
            continue
        d = disparity[y0:y1, x0:x1]
        known = d[np.isfinite(d)]
        if known.max() - known.min() > _REGION_MAX_SPREAD * (x1 - x0):
            continue
        kept.append((x0, y0, x1, y1))
        if len(kept) == MAX_STEREO_REGIONS:
            break
    return kept


def stereo_truth_box(
    region: tuple[int, int, int, int], disparity: np.ndarray
) -> tuple[float, float, float, float]:
    """The right-view box of a left-view region: every pixel of the region with a known
    disparity moved to ``x - d``; the box of the moved pixels (pixel edges, xyxy float)."""
    x0, y0, x1, y1 = region
    d = disparity[y0:y1, x0:x1]
    ys, xs = np.nonzero(np.isfinite(d))
    moved = xs + x0 - d[ys, xs]
    return (
        float(moved.min()),
        float(ys.min() + y0),
        float(moved.max() + 1.0),
        float(ys.max() + y0 + 1.0),
    )


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union
