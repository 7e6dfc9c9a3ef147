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

from matcher.foreground import foreground_box
from matcher.images import DEFAULT_LIMITS, Box, ImageLike, ImageLimits, load_image, validate_box
from matcher.mask_codec import decode_rle, encode_rle


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
