"""Every crop the matchers take of an image, by who takes it.

**The original trackers**, exactly as each takes them (the parity tests hold them to the
originals' pixels):

* :func:`subwindow` — PySOT ``get_subwindow`` and DaSiamRPN ``get_subwindow_tracking``:
  an ``original_size`` square around ``center`` (corners snapped with ``corner_round``),
  areas outside the image filled with the channel average truncated to uint8, resized
  with ``cv2.resize`` (bilinear) when the sizes differ.
* :func:`siamfc_crop` — siamfc-pytorch ``crop_and_resize``: corners rounded half-to-even
  in float32, border added with ``cv2.copyMakeBorder`` (value rounded by OpenCV), always
  resized.

**Match mode's crops around boxes**: :func:`template_crop` cuts a reference's template
(the box plus context, area-averaged when shrinking). :func:`search_crops` takes
tracker-style search crops around candidates: both the SiamMask mask pass and
distractor-aware re-scoring look again at each candidate the way a tracker would: a square
crop centred on the box, of side ``s_z * instance_size / exemplar_size`` with
``s_z = sqrt((w + p)(h + p))`` and ``p = context * (w + h)``, resized to
``instance_size``. In such a crop the candidate sits at the centre score cell at the
template's scale (:func:`centre_peak` finds the most confident cell near it).

**The detection family's reference crop** (Siamese Mask R-CNN, :func:`reference_crop`):
the reference box, widened by a context margin and clipped to the image, is cut out,
resized so its longer side is ``size`` (the aspect ratio is kept) and centred on a
``size x size`` canvas filled with the ImageNet mean colour, which the network's
normalisation maps to zero (the original's zero padding after mean subtraction). The same
function serves inference (:mod:`matcher.siam_mask_rcnn_matcher`) and training episodes,
so both see references framed alike.

**The catalog embedder's crops** (:mod:`matcher.embedder`): :func:`square_crop`, the square
around a box widened by a context margin and clipped to the image (what is embedded of a
box, by verification, :mod:`matcher.inference.verify`, and the retrieval evaluation), and
:func:`letterbox`, an image of any aspect ratio fitted into the embedder's square input,
padded with its own mean colour.

All take and return ``HxWx3`` uint8 arrays in whatever channel order the caller uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from matcher.errors import InvalidBoxError

# -- the original trackers' crops ----------------------------------------------------------


def floor_half(value: float) -> float:
    """PySOT's corner rounding: ``floor(x + 0.5)``."""
    return float(np.floor(value + 0.5))


def py2_round(value: float) -> float:
    """Python 2 ``round``: halves away from zero (DaSiamRPN's convention)."""
    value = float(value)
    return float(np.floor(value + 0.5)) if value >= 0 else -float(np.floor(-value + 0.5))


def subwindow(
    image: np.ndarray,
    center: tuple[float, float] | np.ndarray,
    model_size: int,
    original_size: float,
    fill: np.ndarray,
    *,
    corner_round: Callable[[float], float] = floor_half,
) -> np.ndarray:
    """Square crop of side ``original_size`` centred on ``center``, resized to ``model_size``.

    Args:
        image: ``(H, W, 3)`` uint8.
        center: ``(cx, cy)`` in pixels.
        model_size: output side.
        original_size: side of the crop in the image (an integer value).
        fill: per-channel colour for areas outside the image (truncated to uint8).
        corner_round: snapping of the top-left corner.

    Returns:
        ``(model_size, model_size, 3)`` uint8.
    """
    size = int(original_size)
    c = (original_size + 1) / 2
    xmin = int(corner_round(center[0] - c))
    ymin = int(corner_round(center[1] - c))
    height, width = image.shape[:2]
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmin + size, width), min(ymin + size, height)
    if x0 == xmin and y0 == ymin and x1 == xmin + size and y1 == ymin + size:
        patch = image[ymin : ymin + size, xmin : xmin + size]
    else:
        patch = np.empty((size, size, image.shape[2]), dtype=np.uint8)
        patch[:] = np.asarray(fill, dtype=np.float64).astype(np.uint8)
        if x1 > x0 and y1 > y0:
            patch[y0 - ymin : y1 - ymin, x0 - xmin : x1 - xmin] = image[y0:y1, x0:x1]
    if model_size != original_size:
        patch = cv2.resize(patch, (model_size, model_size))
    return np.ascontiguousarray(patch)


def siamfc_crop(
    image: np.ndarray,
    center_yx: np.ndarray,
    size: float,
    out_size: int,
    border_value: np.ndarray,
) -> np.ndarray:
    """siamfc-pytorch's crop: ``round(size)`` square at ``center_yx``, resized to ``out_size``.

    Args:
        image: ``(H, W, 3)`` uint8.
        center_yx: ``(cy, cx)``; its dtype (float32 in the tracker) sets the rounding
            arithmetic, as in the original.
        size: side in the image.
        out_size: output side.
        border_value: per-channel fill colour, passed to OpenCV as is.

    Returns:
        ``(out_size, out_size, 3)`` uint8.
    """
    side = round(size)
    start = np.round(center_yx - (side - 1) / 2)
    corners = np.round(np.concatenate((start, start + side))).astype(int)
    pads = np.concatenate((-corners[:2], corners[2:] - np.array(image.shape[:2])))
    npad = max(0, int(pads.max()))
    if npad > 0:
        image = cv2.copyMakeBorder(
            image, npad, npad, npad, npad, cv2.BORDER_CONSTANT, value=border_value
        )
    corners = corners + npad
    patch = image[corners[0] : corners[2], corners[1] : corners[3]]
    return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)


# -- match mode: crops around boxes --------------------------------------------------------


def template_crop(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    *,
    exemplar_size: int,
    context_amount: float,
) -> tuple[np.ndarray, float]:
    """Square crop of the box plus context, resized to ``exemplar_size`` (area averaging).

    Args:
        image: ``(H, W, 3)`` uint8.
        box: ``(x0, y0, x1, y1)``.
        exemplar_size: output side.
        context_amount: context as a fraction of ``w + h``.

    Returns:
        ``(crop, scale)`` where ``scale`` is template pixels per image pixel.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ctx = context_amount * (w + h)
    side = math.sqrt((w + ctx) * (h + ctx))
    scale = exemplar_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Map the square [cx - side/2, cx + side/2] onto [0, exemplar_size] (pixel centres).
    matrix = np.array(
        [
            [scale, 0.0, -(cx - side / 2) * scale - 0.5 + 0.5 * scale],
            [0.0, scale, -(cy - side / 2) * scale - 0.5 + 0.5 * scale],
        ],
        dtype=np.float64,
    )
    fill = tuple(float(v) for v in image.reshape(-1, 3).mean(axis=0))
    if scale < 1.0:
        # Shrink with area averaging first so small templates do not alias.
        factor = max(1, int(1.0 / scale))
        if factor > 1:
            small = cv2.resize(
                image,
                (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor)),
                interpolation=cv2.INTER_AREA,
            )
            sx = image.shape[1] / small.shape[1]
            sy = image.shape[0] / small.shape[0]
            pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
            # compose: template <- image <- small
            full = np.vstack([matrix, [0, 0, 1]]) @ np.vstack([pre, [0, 0, 1]])
            matrix, image = full[:2], small
    crop = cv2.warpAffine(
        image,
        matrix,
        (exemplar_size, exemplar_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return crop, scale


def search_crops(
    scene: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    *,
    exemplar_size: int,
    instance_size: int,
    context_amount: float,
) -> tuple[list[np.ndarray], list[tuple[float, float, float]]]:
    """Crops centred on ``boxes``.

    Args:
        scene: ``(H, W, 3)`` uint8.
        boxes: ``(x0, y0, x1, y1)`` in scene pixels.
        exemplar_size / instance_size / context_amount: network geometry.

    Returns:
        ``(crops, crop_boxes)``: ``(instance_size, instance_size, 3)`` uint8 crops and
        each crop's ``(x0, y0, side)`` in the scene.
    """
    fill = scene.reshape(-1, 3).mean(axis=0)
    crops, crop_boxes = [], []
    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        ctx = context_amount * (w + h)
        s_z = math.sqrt((w + ctx) * (h + ctx))
        side = max(1, round(s_z * instance_size / exemplar_size))
        center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        crops.append(subwindow(scene, center, instance_size, side, fill))
        crop_boxes.append((center[0] - side / 2, center[1] - side / 2, float(side)))
    return crops, crop_boxes


def centre_peak(prob: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most confident cell within ``radius`` cells of each map's centre.

    Args:
        prob: ``(N, S, S)`` probabilities.
        radius: half-size of the searched square.

    Returns:
        ``(values (N,), rows (N,), cols (N,))``.
    """
    n, size = prob.shape[0], prob.shape[1]
    c = size // 2
    lo, hi = max(0, c - radius), min(size, c + radius + 1)
    near = prob[:, lo:hi, lo:hi]
    flat = near.reshape(n, -1)
    idx = flat.argmax(axis=1)
    return flat[np.arange(n), idx], lo + idx // near.shape[2], lo + idx % near.shape[2]


# -- the detection family's reference crop -------------------------------------------------


#: ImageNet mean RGB as uint8: the padding colour.
MEAN_RGB = (124, 116, 104)


def context_box(
    box: Sequence[float], image_size: tuple[int, int], *, context: float
) -> tuple[int, int, int, int]:
    """Integer pixel window of ``box`` plus a margin, clipped to the image.

    Args:
        box: ``(x0, y0, x1, y1)`` float pixels.
        image_size: ``(height, width)``.
        context: margin on each side as a fraction of the box's width / height.

    Returns:
        ``(x0, y0, x1, y1)`` ints with ``0 <= x0 < x1 <= width`` (same for y).
    """
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = context * (x1 - x0), context * (y1 - y0)
    left = min(max(int(np.floor(x0 - mx)), 0), width - 1)
    top = min(max(int(np.floor(y0 - my)), 0), height - 1)
    right = max(min(int(np.ceil(x1 + mx)), width), left + 1)
    bottom = max(min(int(np.ceil(y1 + my)), height), top + 1)
    return left, top, right, bottom


def reference_crop(
    image: np.ndarray,
    box: Sequence[float],
    *,
    size: int,
    context: float,
    fill: tuple[int, int, int] = MEAN_RGB,
) -> np.ndarray:
    """Square reference crop.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: ``(x0, y0, x1, y1)`` of the reference object in ``image``.
        size: side of the output.
        context: margin on each side as a fraction of the box's width / height.
        fill: colour of the padding.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    x0, y0, x1, y1 = context_box(box, image.shape[:2], context=context)
    patch = image[y0:y1, x0:x1]
    h, w = patch.shape[:2]
    scale = size / max(h, w)
    new_w = min(size, max(1, round(w * scale)))
    new_h = min(size, max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(patch), (new_w, new_h), interpolation=interp)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = np.asarray(fill, np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized.reshape(new_h, new_w, 3)
    return canvas


# -- the catalog embedder's crops ----------------------------------------------------------


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Fit ``image`` into a ``size x size`` square, keeping its aspect ratio.

    Args:
        image: ``(H, W, 3)`` uint8.
        size: output side.

    Returns:
        ``(size, size, 3)`` uint8: the image resized (longer side = ``size``), centred and
        padded with its mean colour.
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    if nh == size and nw == size:  # nothing to pad: the mean colour is not needed
        return resized.reshape(size, size, 3)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = np.round(image.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


def square_crop(image: np.ndarray, box: Sequence[float], context: float) -> np.ndarray:
    """The square around ``box`` (xyxy), side ``max(w, h) * (1 + context)``, clipped to the
    image: what the embedder sees of a box (letterboxed afterwards by
    :meth:`matcher.embedder.Embedder.embed`).

    A box that leaves no pixel inside the image gives the 1x1 crop nearest to it.

    Raises:
        InvalidBoxError: a coordinate is NaN or infinite.
    """
    left, top, right, bottom = square_bounds(image.shape[:2], box, context)
    return image[top:bottom, left:right]


def square_bounds(
    size: tuple[int, int], box: Sequence[float], context: float
) -> tuple[int, int, int, int]:
    """The pixel bounds ``(left, top, right, bottom)`` (half-open) that :func:`square_crop`
    cuts from an image of ``size`` ``(height, width)``: two boxes with the same bounds
    give the same crop.

    Raises:
        InvalidBoxError: a coordinate is NaN or infinite.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InvalidBoxError(f"cannot crop around box {tuple(box)!r}: non-finite coordinates")
    side = max(x1 - x0, y1 - y0) * (1 + context)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = size
    left = min(max(0, round(cx - side / 2)), w - 1)
    top = min(max(0, round(cy - side / 2)), h - 1)
    right = max(min(w, round(cx + side / 2)), left + 1)
    bottom = max(min(h, round(cy + side / 2)), top + 1)
    return left, top, right, bottom
