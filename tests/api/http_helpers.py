"""Small helpers of the HTTP service tests: encoding images for requests."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an ``(H, W, 3)`` uint8 RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(data: bytes, name: str = "image.png") -> tuple[io.BytesIO, str]:
    """A multipart file part for the Flask test client."""
    return (io.BytesIO(data), name)


def b64(data: bytes) -> str:
    """Base64 text of ``data``, as JSON bodies carry images."""
    return base64.b64encode(data).decode("ascii")


def decode_png(data: bytes) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
