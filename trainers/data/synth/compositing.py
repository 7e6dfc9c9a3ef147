"""Placing products and clutter into a scene while tracking who is visible where.

A :class:`Canvas` holds the scene image and an instance-label map. Placing a product
warps its prepared RGBA (a perspective warp of the pyramid level closest to the target
size, into the object's bounding box only), casts a soft shadow, alpha-composites it
(premultiplied colour) and writes its label where it is opaque (alpha >= 0.5). Anything
placed later — another product, a foreign product, an occluder — overwrites the label,
so the visible masks of different instances never overlap and occlusion is exact.

Shape shorthand: ``quad`` is ``(4, 2)`` float32 corners (top-left, top-right,
bottom-right, bottom-left of the product) in scene pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from trainers.data.synth.bank import PreparedProduct

_OPAQUE = 128  # alpha (0-255) from which a pixel belongs to an object's mask


def product_quad(
    rng: np.random.Generator,
    *,
    anchor: tuple[float, float],
    height: float,
    aspect: float,
    angle: float,
    perspective: float,
    bottom: bool = False,
) -> np.ndarray:
    """Corners of a product placed in a scene.

    Args:
        rng: generator for the perspective jitter (consumed).
        anchor: ``(x, y)`` scene pixels of the product's centre, or of its bottom centre
            when ``bottom``.
        height: product height, pixels.
        aspect: width over height.
        angle: in-plane rotation, degrees (counter-clockwise on screen).
        perspective: corner jitter as a fraction of ``min(height, width)``.
        bottom: anchor at the bottom centre (products standing on a shelf).

    Returns:
        ``quad``: ``(4, 2)`` float32, TL, TR, BR, BL.
    """
    w = height * aspect
    y_top, y_bot = (-height, 0.0) if bottom else (-height / 2, height / 2)
    pts = np.array([[-w / 2, y_top], [w / 2, y_top], [w / 2, y_bot], [-w / 2, y_bot]])
    pts += rng.uniform(-perspective, perspective, (4, 2)) * min(height, w)
    t = math.radians(angle)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    return (pts @ rot.T + np.asarray(anchor)).astype(np.float32)


class Canvas:
    """A scene under composition.

    Args:
        background: ``(H, W, 3)`` float32 RGB in ``[0, 255]``; owned (modified in place).

    Attributes:
        image: the scene, ``(H, W, 3)`` float32.
        label: ``(H, W)`` uint16; ``k >= 1`` where annotated instance ``k`` is visible.
        product_ids: product id of annotated instance ``k`` at index ``k - 1``.
        boxes: ``(x0, y0, x1, y1)`` int region of instance ``k`` inside the image.
        full_areas: pixels of instance ``k``'s whole silhouette, inside the image or not.
    """

    def __init__(self, background: np.ndarray) -> None:
        self.image = background
        self.label = np.zeros(background.shape[:2], np.uint16)
        self.product_ids: list[int] = []
        self.boxes: list[tuple[int, int, int, int]] = []
        self.full_areas: list[int] = []

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.label.shape  # type: ignore[return-value]

    def place_product(
        self,
        product: PreparedProduct,
        quad: np.ndarray,
        *,
        annotate: bool,
        gain: np.ndarray,
        shadow: float,
        shadow_offset: tuple[float, float] = (0.0, 0.0),
        glare: tuple[float, float, float] | None = None,
    ) -> tuple[int, int, int, int] | None:
        """Warp a product to ``quad`` and composite it.

        Args:
            product: the prepared product.
            quad: ``(4, 2)`` float32 target corners, TL, TR, BR, BL.
            annotate: record it as an instance (catalog product) or only occlude with it.
            gain: ``(3,)`` float32 per-channel light on the object.
            shadow: drop-shadow opacity in ``[0, 1]`` (0: none).
            shadow_offset: ``(dx, dy)`` of the shadow, pixels.
            glare: ``(u, v, strength)``: a specular spot at relative position ``(u, v)`` of
                the object box, ``strength`` in 8-bit levels; ``None`` for none.

        Returns:
            The object's ``(x0, y0, x1, y1)`` box clipped to the image, or ``None`` when
            it falls entirely outside.
        """
        H, W = self.size
        h0, w0 = product.levels[0].shape[:2]
        scale = math.sqrt(max(_quad_area(quad), 1.0) / (h0 * w0))  # target / full resolution
        k = min(max(math.floor(math.log2(1.0 / scale)), 0), len(product.levels) - 1)
        level = product.levels[k]
        lh, lw = level.shape[:2]
        src = np.float32([[0, 0], [lw, 0], [lw, lh], [0, lh]])
        x0, y0 = math.floor(quad[:, 0].min()) - 1, math.floor(quad[:, 1].min()) - 1
        x1, y1 = math.ceil(quad[:, 0].max()) + 2, math.ceil(quad[:, 1].max()) + 2
        shift = np.float64([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]])
        hom = shift @ cv2.getPerspectiveTransform(src, quad)
        warped = cv2.warpPerspective(
            level,
            hom,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        opaque = warped[..., 3] >= _OPAQUE
        full_area = int(np.count_nonzero(opaque))
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if full_area == 0 or cx1 <= cx0 or cy1 <= cy0:
            return None
        if shadow > 0:
            self._shadow(warped[..., 3], x0, y0, opacity=shadow, offset=shadow_offset)
        crop = warped[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
        a = crop[..., 3:] / 255.0
        colour = crop[..., :3] * gain
        if glare is not None:
            u, v, strength = glare
            gy, gx = np.ogrid[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            spread = 2 * (0.2 * max(x1 - x0, y1 - y0)) ** 2
            r2 = ((gx - u * (x1 - x0)) ** 2 + (gy - v * (y1 - y0)) ** 2) / spread
            spot = strength * np.exp(-r2).astype(np.float32)
            colour += spot[..., None].astype(np.float32) * a
        roi = self.image[cy0:cy1, cx0:cx1]
        roi *= 1.0 - a
        roi += colour
        covered = opaque[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        if annotate:
            self.product_ids.append(product.spec.product_id)
            self.boxes.append((cx0, cy0, cx1, cy1))
            self.full_areas.append(full_area)
            self.label[cy0:cy1, cx0:cx1][covered] = len(self.product_ids)
        else:
            self.label[cy0:cy1, cx0:cx1][covered] = 0
        return cx0, cy0, cx1, cy1

    def place_item(
        self,
        rgb: np.ndarray,
        alpha: np.ndarray,
        *,
        left: int,
        top: int,
        occlude: bool,
        shadow: float = 0.0,
    ) -> None:
        """Composite a clutter item (straight alpha) with its top-left corner at ``(left, top)``.

        Args:
            rgb: ``(h, w, 3)`` float32 RGB.
            alpha: ``(h, w)`` float32 in ``[0, 1]``.
            left: column of the item's left edge (may be negative).
            top: row of the item's top edge (may be negative).
            occlude: erase covered pixels from the visible masks of earlier instances.
            shadow: drop-shadow opacity (0: none).
        """
        H, W = self.size
        h, w = alpha.shape
        if shadow > 0:
            self._shadow(alpha * 255.0, left, top, opacity=shadow, offset=(0.04 * w, 0.05 * h))
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
        if x1 <= x0 or y1 <= y0:
            return
        a = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
        roi = self.image[y0:y1, x0:x1]
        roi *= 1.0 - a
        roi += a * rgb[y0 - top : y1 - top, x0 - left : x1 - left]
        if occlude:
            self.label[y0:y1, x0:x1][a[..., 0] >= _OPAQUE / 255.0] = 0

    def _shadow(
        self, alpha: np.ndarray, left: int, top: int, *, opacity: float, offset: tuple[float, float]
    ) -> None:
        """Darken the image under a blurred, offset copy of ``alpha`` (0-255 values)."""
        H, W = self.size
        h, w = alpha.shape
        sigma = max(1.0, 0.03 * max(h, w))
        m = int(3 * sigma)
        buf = cv2.copyMakeBorder(alpha.astype(np.float32) / 255.0, m, m, m, m, cv2.BORDER_CONSTANT)
        buf = cv2.GaussianBlur(buf, (0, 0), sigma)
        left, top = left - m + round(offset[0]), top - m + round(offset[1])
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + w + 2 * m, W), min(top + h + 2 * m, H)
        if x1 <= x0 or y1 <= y0:
            return
        dark = 1.0 - opacity * buf[y0 - top : y1 - top, x0 - left : x1 - left]
        self.image[y0:y1, x0:x1] *= dark[..., None]

    def visible_masks(self) -> list[tuple[int, np.ndarray, int, int]]:
        """``(product_id, mask, area, full_area)`` per annotated instance that is visible.

        ``mask`` is ``(H, W)`` bool, the pixels where the instance is on top, stored in
        column-major (Fortran) order as COCO RLE encodes it; ``area`` is its pixel count.
        """
        H, W = self.size
        out = []
        for k, (pid, (x0, y0, x1, y1), full) in enumerate(
            zip(self.product_ids, self.boxes, self.full_areas, strict=True), start=1
        ):
            roi = self.label[y0:y1, x0:x1] == k
            area = int(np.count_nonzero(roi))
            if area == 0:
                continue
            columns = np.zeros((W, H), bool)  # mask.T, C-ordered: mask is F-ordered
            columns[x0:x1, y0:y1] = roi.T
            out.append((pid, columns.T, area, full))
        return out


def _quad_area(quad: np.ndarray) -> float:
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
