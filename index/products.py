"""Catalog records (:class:`Product`, :class:`Hit`) and the checks on what users pass in.

Product ids are short strings safe in URLs and file names: 1 to 128 characters from
``A-Z a-z 0-9 . _ ~ : @ + = -``, not starting with ``.`` or ``-``. Metadata is a JSON object
(a ``dict`` with string keys) of at most :data:`MAX_METADATA_BYTES` once encoded and
:data:`MAX_METADATA_DEPTH` levels of nesting (deeper values would make every later
encoding of the product recurse that deep). Reference images are stored as PNG.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from matcher.errors import InvalidArgumentError, InvalidImageError
from matcher.foreground import foreground_box
from matcher.images import DEFAULT_LIMITS, Box, ImageLimits, load_image, validate_box

logger = logging.getLogger(__name__)

#: Accepted product ids.
PRODUCT_ID_PATTERN = re.compile(r"[A-Za-z0-9_~:@+=][A-Za-z0-9._~:@+=-]{0,127}")

#: Largest accepted metadata, as UTF-8 JSON.
MAX_METADATA_BYTES = 64 * 1024

#: Deepest accepted nesting of arrays and objects in metadata (the object itself is 1).
MAX_METADATA_DEPTH = 32

#: How the catalog re-reads the photos it stored: they passed the limits in force when
#: they were added (older catalogs may hold thin ones), and refusing them now would break
#: searches, template caching and re-embedding for the whole catalog.
STORED_LIMITS = ImageLimits(max_pixels=2**62, max_side=2**31, max_aspect=math.inf)


@dataclass(frozen=True, eq=False)
class Product:
    """One catalog product as stored.

    Attributes:
        product_id: the product's id.
        metadata: the JSON object given at ``add`` time.
        box: ``(x0, y0, x1, y1)`` of the product in its reference image, or ``None`` when
            the product is the image's foreground (see :func:`matcher.structures.foreground_box`).
        created_at: UNIX time of the ``add``.
        image_png: the reference image, PNG-encoded RGB.
        image_size: ``(height, width)`` of the reference image.
    """

    product_id: str
    metadata: dict[str, Any]
    box: Box | None
    created_at: float
    image_png: bytes
    image_size: tuple[int, int] = (0, 0)

    def image(self) -> np.ndarray:
        """The reference image, ``(H, W, 3)`` uint8 RGB."""
        return load_image(self.image_png, limits=STORED_LIMITS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the image bytes."""
        return {
            "product_id": self.product_id,
            "metadata": self.metadata,
            "box": list(self.box) if self.box is not None else None,
            "created_at": self.created_at,
            "image_size": {"height": self.image_size[0], "width": self.image_size[1]},
        }


@dataclass(frozen=True)
class Hit:
    """A retrieval result: a product and its similarity to the query.

    Attributes:
        product_id: the product's id.
        score: inner product of the query and product vectors (cosine similarity for the
            unit vectors an :class:`~matcher.embedder.Embedder` makes; approximate for PQ).
    """

    product_id: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"product_id": self.product_id, "score": round(float(self.score), 6)}


def validate_product_id(product_id: object) -> str:
    """Return ``product_id`` if it is an acceptable id.

    Raises:
        InvalidArgumentError: not a string, empty, too long or with other characters.
    """
    if not isinstance(product_id, str):
        raise InvalidArgumentError(f"product id must be a string, got {type(product_id).__name__}")
    if PRODUCT_ID_PATTERN.fullmatch(product_id) is None:
        raise InvalidArgumentError(
            f"invalid product id {product_id[:140]!r}: use 1 to 128 characters from "
            "A-Z a-z 0-9 . _ ~ : @ + = - (not starting with '.' or '-')"
        )
    return product_id


def json_depth(value: object, *, limit: int) -> int:
    """Nesting depth of a decoded JSON value, counted without recursion.

    A scalar has depth 0, ``[]`` and ``{}`` depth 1, ``{"a": [1]}`` depth 2.

    Args:
        value: a value as :func:`json.loads` returns it (dicts, lists, scalars).
        limit: stop counting once the depth exceeds this.

    Returns:
        The depth, or ``limit + 1`` when it exceeds ``limit``.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def validate_metadata(metadata: object) -> str:
    """Encode metadata as compact JSON after checking it.

    Args:
        metadata: a ``dict`` with string keys and JSON values, or ``None`` (empty).

    Returns:
        The JSON text.

    Raises:
        InvalidArgumentError: not a JSON object, not encodable (NaN, sets, objects ...),
            a NUL character or an unpaired surrogate in a key or string (neither store
            keeps them alike: PostgreSQL's JSONB refuses NUL), larger than
            :data:`MAX_METADATA_BYTES` or nested deeper than :data:`MAX_METADATA_DEPTH`.
    """
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise InvalidArgumentError(
            f"metadata must be a JSON object (a dict), got {type(metadata).__name__}"
        )
    if not all(isinstance(k, str) for k in metadata):
        raise InvalidArgumentError("metadata keys must be strings")
    if json_depth(metadata, limit=MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise InvalidArgumentError(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
    try:
        text = json.dumps(metadata, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"metadata is not valid JSON: {exc}") from None
    if _has_nul(metadata):
        raise InvalidArgumentError("metadata must not contain NUL characters (\\u0000)")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            "metadata holds a string that is not valid Unicode (an unpaired surrogate)"
        ) from None
    if size > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"metadata is {size} bytes as JSON, over the limit of {MAX_METADATA_BYTES}"
        )
    return text


def _has_nul(value: object) -> bool:
    """Whether a NUL character is in any key or string of a JSON value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def parse_metadata(text: str) -> dict[str, Any]:
    """Decode metadata JSON (for the command line); see :func:`validate_metadata`.

    Raises:
        InvalidArgumentError: not JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"metadata is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder refuses nesting deeper than the recursion limit
        raise InvalidArgumentError(
            f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep"
        ) from None
    validate_metadata(value)
    return value


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 RGB image.

    Raises:
        InvalidImageError: the encoder refuses the image.
    """
    ok, buf = cv2.imencode(".png", image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise InvalidImageError(f"cannot encode a {image.shape} image as PNG")
    return buf.tobytes()


def box_to_json(box: Box | None) -> str | None:
    """Stored form of a box."""
    return None if box is None else json.dumps([float(v) for v in box])


def box_from_json(text: str | None) -> Box | None:
    """Inverse of :func:`box_to_json`."""
    if text is None:
        return None
    values = json.loads(text)
    assert len(values) == 4 and all(math.isfinite(v) for v in values)
    return (float(values[0]), float(values[1]), float(values[2]), float(values[3]))


def load_product_image(
    product_id: str,
    image: object,
    box: object | None,
    *,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> tuple[np.ndarray, Box | None, Box]:
    """Read a reference image and check its box.

    Args:
        product_id: the product's id, for messages.
        image: anything :func:`matcher.images.load_image` reads.
        box: the product's box in it, or ``None``.
        limits: the images accepted (:data:`STORED_LIMITS` for photos the catalog holds).

    Returns:
        The ``(H, W, 3)`` uint8 RGB image, the validated (clipped) box or ``None``, and the
        box to embed: the given one, else the image's foreground.

    Raises:
        InvalidImageError: unreadable image, or outside ``limits``.
        InvalidBoxError: bad box.
    """
    rgb = load_image(image, limits=limits)
    checked = None
    if box is not None:
        checked = validate_box(box, rgb.shape[:2], name=f"box of product {product_id!r}")
    return rgb, checked, checked if checked is not None else foreground_box(rgb)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``image`` inside ``box`` (outward-rounded)."""
    x0, y0, x1, y1 = box
    return image[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)]
