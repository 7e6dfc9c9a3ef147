"""The public data types: references, instances and match results.

They are plain frozen dataclasses. Boxes are ``(x0, y0, x1, y1)`` float pixels in the image
they refer to; masks are ``HxW`` bool arrays in scene coordinates. ``to_dict`` gives the
JSON form used by the command line and the HTTP API (masks as COCO RLE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.images import DEFAULT_LIMITS, Box, ImageLike, ImageLimits, load_image, validate_box
from matcher.masks import decode_rle, encode_rle


@dataclass(frozen=True, eq=False)
class Reference:
    """A product reference: an RGB image and the product's box in it.

    Build it with :meth:`from_image`, which validates the inputs.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        box: ``(x0, y0, x1, y1)`` of the product in ``image``.
        id: optional identifier carried into results.
    """

    image: np.ndarray
    box: Box
    id: str | None = None

    @classmethod
    def from_image(
        cls,
        image: ImageLike,
        box: Box | None = None,
        *,
        id: str | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
    ) -> Reference:
        """Validate an image and box into a reference.

        Args:
            image: anything :func:`matcher.images.load_image` reads.
            box: the product's box; ``None`` takes the product as the image's foreground
                on a plain background (the whole image when the background is not plain).
            id: optional identifier.
            limits: the images accepted (pixels, sides, aspect ratio).

        Raises:
            InvalidImageError: the image cannot be read, or is outside ``limits``
                (:class:`~matcher.errors.ImageTooLargeError`,
                :class:`~matcher.errors.ImageTooThinError`).
            InvalidBoxError: the box is degenerate or outside the image.
        """
        rgb = load_image(image, limits=limits)
        if box is None:
            box = foreground_box(rgb)
        return cls(image=rgb, box=validate_box(box, rgb.shape[:2], name="reference box"), id=id)

    @property
    def size(self) -> tuple[float, float]:
        """``(width, height)`` of the box."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0, y1 - y0)


def plain_background(image: np.ndarray, *, tolerance: int, border: int) -> np.ndarray | None:
    """The background colour of a photo on a plain background, or ``None`` when it has none.

    The colour is the median of the image's border strips (``border`` pixels wide); the
    background counts as plain when at least 90 % of the border lies within ``tolerance``
    of it (max over channels). Images too small for the strips have none.

    Returns:
        ``(3,)`` float64 colour, or ``None``.
    """
    height, width = image.shape[:2]
    if height <= 4 * border or width <= 4 * border:
        return None
    strips = np.concatenate(
        [
            image[:border].reshape(-1, 3),
            image[-border:].reshape(-1, 3),
            image[:, :border].reshape(-1, 3),
            image[:, -border:].reshape(-1, 3),
        ]
    ).astype(np.int16)
    background = np.median(strips, axis=0)
    if np.mean(np.abs(strips - background).max(axis=1) <= tolerance) < 0.9:
        return None
    return background


def foreground_box(image: np.ndarray, *, tolerance: int = 24, border: int = 2) -> Box:
    """Box of the foreground of a product photo on a plain background.

    The background colour is the median of the image border. When at least 90 % of the
    border is within ``tolerance`` of it, the box covers every pixel that differs from it
    by more than ``tolerance`` (max over channels); otherwise, or when nothing differs, it
    is the whole image.

    Args:
        image: ``(H, W, 3)`` uint8.
        tolerance: colour distance separating product from background.
        border: width of the border strip that samples the background.

    Returns:
        ``(x0, y0, x1, y1)``.
    """
    height, width = image.shape[:2]
    whole: Box = (0.0, 0.0, float(width), float(height))
    background = plain_background(image, tolerance=tolerance, border=border)
    if background is None:
        return whole
    diff = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=2) > tolerance
    ys, xs = np.nonzero(diff)
    if len(xs) == 0:
        return whole
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    if (x1 - x0) < 2 or (y1 - y0) < 2:
        return whole
    return (float(x0), float(y0), float(x1), float(y1))


@dataclass(frozen=True, eq=False)
class Instance:
    """One found occurrence of a reference in a scene.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in scene pixels.
        score: confidence in ``[0, 1]``.
        mask: ``(H, W)`` bool in scene coordinates, or ``None`` for box-only models.
        polygon: corners ``((x, y), ...)`` of the instance outline, or ``None``.
    """

    box: Box
    score: float
    mask: np.ndarray | None = None
    polygon: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the mask becomes COCO RLE."""
        return {
            "box": [round(float(v), 3) for v in self.box],
            "score": round(float(self.score), 6),
            "mask": encode_rle(self.mask) if self.mask is not None else None,
            "polygon": (
                [[round(float(x), 3), round(float(y), 3)] for x, y in self.polygon]
                if self.polygon is not None
                else None
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        """Inverse of :meth:`to_dict` (used by clients of the HTTP API)."""
        mask = decode_rle(data["mask"]) if data.get("mask") else None
        polygon = data.get("polygon")
        return cls(
            box=tuple(float(v) for v in data["box"]),  # type: ignore[arg-type]
            score=float(data["score"]),
            mask=mask,
            polygon=tuple((float(x), float(y)) for x, y in polygon) if polygon else None,
        )


@dataclass(frozen=True, eq=False)
class MatchResult:
    """All instances of one reference in one scene, best first.

    Attributes:
        instances: sorted by decreasing score.
        scene_size: ``(height, width)`` of the scene.
        reference_id: the reference's id, if it had one.
    """

    instances: tuple[Instance, ...]
    scene_size: tuple[int, int]
    reference_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Instance | None:
        """The highest-scoring instance, or ``None`` when nothing was found."""
        return self.instances[0] if self.instances else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "reference_id": self.reference_id,
            "scene_size": {"height": self.scene_size[0], "width": self.scene_size[1]},
            "instances": [inst.to_dict() for inst in self.instances],
            **({"extra": self.extra} if self.extra else {}),
        }

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps`` of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), **kwargs)
