"""Normalised cross-correlation of a template over an image, as OpenCV's ``TM_CCOEFF_NORMED``
defines it, computed faster for colour images.

For a window ``W`` of the image and the template ``T`` (both ``h x w`` with ``C``
channels), the response is the Pearson correlation over all ``h * w * C`` values, each
channel centred on its own mean::

    r = sum_c <W_c - mean(W_c), T_c - mean(T_c)>
        / sqrt(sum_c |W_c - mean(W_c)|^2 * sum_c |T_c - mean(T_c)|^2)

``cv2.matchTemplate`` on a three-channel image takes about four times as long as three
single-channel cross-correlations on the CPUs this project runs on (21 vs 5 ms for a
32 px template over 640x480). This module splits the work the same way OpenCV's own
definition does:

* numerator: the template centred per channel sums to zero, so the window's mean drops out
  and the numerator is the sum over channels of plain cross-correlations
  (``TM_CCORR``, one channel each) with the centred template;
* denominator: the window's centred energy is ``sum(W^2) - sum_c sum(W_c)^2 / (h w)``,
  from box sums in double precision of the channels and of their summed squares;
* as in OpenCV, a ratio up to 1/8 beyond ``[-1, 1]`` (rounding) is clipped, one further out
  (a window flat to rounding) or a zero denominator gives 0, and a flat template gives 1
  everywhere.

The per-image parts (channel planes, summed squares, grey squares) are prepared once by
:func:`prepare` and shared by every template correlated with that image (the levels of
:class:`~matcher.baselines.template.ScenePyramid` keep theirs). On top, as before, windows
whose grey-level standard deviation is below ``min_std`` score 0 and NaNs become 0. The
result agrees with ``cv2.matchTemplate`` to about 1e-5 (``tests/matcher/test_correlation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Smallest image (pixels) correlated channel by channel; on smaller ones OpenCV's
#: three-channel ``matchTemplate`` is as fast (a 60x70 neighbourhood: 0.2 vs 0.24 ms).
SPLIT_FROM = 32_768


@dataclass(frozen=True, eq=False)
class Prepared:
    """An image's parts that do not depend on the template.

    Attributes:
        image: ``(H, W, C)`` float32.
        grey: ``(H, W)`` float32 grey levels (the flatness test).
        planes: the ``C`` channels, each ``(H, W)`` float32 contiguous, and
        energy: ``(H, W)`` float32, the squares summed over channels: what the split
            path reads, only for a colour image of at least :data:`SPLIT_FROM` pixels
            (``()`` and ``None`` otherwise: OpenCV correlates it).
        grey_squared: ``(H, W)`` float32, ``grey ** 2``.
    """

    image: np.ndarray
    grey: np.ndarray
    planes: tuple[np.ndarray, ...]
    energy: np.ndarray | None
    grey_squared: np.ndarray


def prepare(image: np.ndarray, grey: np.ndarray) -> Prepared:
    """The template-independent parts of ``image`` (``(H, W, C)`` float32) and its grey levels."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    grey = np.asarray(grey, np.float32)
    planes: tuple[np.ndarray, ...] = ()
    energy = None
    if image.shape[2] > 1 and image.shape[0] * image.shape[1] >= SPLIT_FROM:
        planes = tuple(np.ascontiguousarray(image[:, :, c]) for c in range(image.shape[2]))
        energy = cv2.multiply(planes[0], planes[0])
        for plane in planes[1:]:
            energy = cv2.add(energy, cv2.multiply(plane, plane))
    return Prepared(image, grey, planes, energy, cv2.multiply(grey, grey))


def correlate(
    image: np.ndarray,
    grey: np.ndarray,
    template: np.ndarray,
    *,
    min_std: float,
    prepared: Prepared | None = None,
) -> np.ndarray:
    """``TM_CCOEFF_NORMED`` response of a template over an image, flat windows zeroed.

    Args:
        image: ``(H, W, C)`` float32.
        grey: ``(H, W)`` float32 grey levels of the same image (for the flatness test).
        template: ``(h, w, C)`` float32, ``h <= H`` and ``w <= W``.
        min_std: windows whose grey-level standard deviation is below this score 0.
        prepared: :func:`prepare` of ``image`` and ``grey``, when several templates share
            them (computed here otherwise).

    Returns:
        ``(H - h + 1, W - w + 1)`` float32 correlations in ``[-1, 1]``.
    """
    th, tw = template.shape[:2]
    if prepared is None:
        prepared = prepare(image, grey)
    height, width = prepared.grey.shape
    rows, cols = height - th + 1, width - tw + 1
    split = (
        prepared.energy is not None
        and height * width >= SPLIT_FROM
        and template.shape[2] == len(prepared.planes)
        and rows > 0
        and cols > 0
    )
    if split:
        response = _colour_response(prepared, np.asarray(template, np.float64), rows, cols)
    else:  # also raises OpenCV's own error for a template too large or of other channels
        kernel = np.asarray(template, np.float32)
        response = cv2.matchTemplate(prepared.image, kernel, cv2.TM_CCOEFF_NORMED)
    mean = cv2.boxFilter(prepared.grey, cv2.CV_32F, (tw, th), anchor=(0, 0), normalize=True)
    mean_sq = cv2.boxFilter(
        prepared.grey_squared, cv2.CV_32F, (tw, th), anchor=(0, 0), normalize=True
    )
    var = mean_sq[:rows, :cols] - mean[:rows, :cols] ** 2
    response[var < min_std**2] = 0.0
    return np.nan_to_num(response, nan=0.0, posinf=0.0, neginf=0.0)


def _colour_response(prepared: Prepared, template: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The correlation of a ``(h, w, C)`` float64 template over the prepared colour image
    (see the module docstring)."""
    th, tw, channels = template.shape
    centred = template - template.mean(axis=(0, 1))
    norm = float(np.sqrt((centred * centred).sum()))
    if norm < np.finfo(np.float64).eps:
        return np.ones((rows, cols), np.float32)  # OpenCV's answer for a flat template
    numerator = None
    for c in range(channels):
        kernel = np.ascontiguousarray(centred[:, :, c], np.float32)
        part = cv2.matchTemplate(prepared.planes[c], kernel, cv2.TM_CCORR)
        numerator = part if numerator is None else cv2.add(numerator, part)
    area = th * tw

    def box(x: np.ndarray) -> np.ndarray:
        out = cv2.boxFilter(x, cv2.CV_64F, (tw, th), anchor=(0, 0), normalize=False)
        return out[:rows, :cols]

    energy = box(prepared.energy)
    for plane in prepared.planes:  # minus each channel's squared window sum over the area
        sums = box(plane)
        np.multiply(sums, sums, out=sums)
        sums /= area
        energy -= sums
    denominator = np.sqrt(np.maximum(energy, 0.0)) * norm
    with np.errstate(divide="ignore", invalid="ignore"):
        response = numerator / denominator
    response[~(np.abs(response) < 1.125)] = 0.0  # NaN, infinite or far out: no correlation
    return np.clip(response, -1.0, 1.0).astype(np.float32)


def peaks(
    response: np.ndarray, *, threshold: float, top_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima (3x3) of a response map at or above ``threshold``, best ``top_k``.

    Returns:
        ``(ys, xs, values)``, three ``(N,)`` arrays sorted by decreasing value.
    """
    dilated = cv2.dilate(response, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((response >= threshold) & (response >= dilated))
    values = response[ys, xs]
    order = np.argsort(-values, kind="stable")[:top_k]
    return ys[order], xs[order], values[order]
