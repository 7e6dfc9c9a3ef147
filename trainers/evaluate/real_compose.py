"""Pasting planar products into real photographs, and the photometric degradations of the
real-photo one-shot set (:mod:`trainers.evaluate.real_set`).

Every function takes its random numbers from a ``numpy.random.Generator`` passed in, so a
trial is a function of its seed. Images are ``HxWx3`` uint8 RGB unless a docstring says
float32; boxes are ``(x0, y0, x1, y1)`` float pixel edges. A scene-wide degradation is
drawn once (:func:`draw_relight`, :func:`draw_blur`) and then applied to the composite
and to the clean background alike, so the two stay comparable pixel for pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Scene size ``(height, width)`` of every pasted-product scene.
SCENE_HW = (480, 640)
#: Free pixels kept between two pasted instances (room for their soft shadows).
GAP = 12
#: Free pixels kept between a pasted instance and the scene border.
BORDER = 4


def background(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 4:3 window of ``photo`` (55-100 % of the largest one, placed at random) resized
    to :data:`SCENE_HW`; returned as float32 in 0-255."""
    height, width = photo.shape[:2]
    scene_h, scene_w = SCENE_HW
    full_w = min(width, height * scene_w / scene_h)
    win_w = full_w * rng.uniform(0.55, 1.0)
    win_h = win_w * scene_h / scene_w
    x0 = rng.uniform(0.0, width - win_w)
    y0 = rng.uniform(0.0, height - win_h)
    box = (round(x0), round(y0), round(x0 + win_w), round(y0 + win_h))
    crop = photo[box[1] : box[3], box[0] : box[2]]
    shrink = crop.shape[1] > scene_w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    resized = cv2.resize(crop, (scene_w, scene_h), interpolation=interp)
    return resized.astype(np.float32)


def resize_longer(image: np.ndarray, side: float) -> np.ndarray:
    """``image`` resized so its longer side is ``side`` pixels (at least 2 each way)."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)


def pose_quad(
    width: int, height: int, rng: np.random.Generator, *, max_tilt: float, max_roll: float
) -> np.ndarray:
    """Corners of a ``width x height`` plane seen tilted: ``(4, 2)`` float32, clockwise from
    the top-left corner, centred near the origin.

    The plane turns by up to ``max_roll`` degrees in the image plane, then tilts by up to
    ``max_tilt`` degrees about a random in-plane axis, and is projected by a pinhole camera
    at twice its longer side (a close, clearly perspective view).
    """
    x, y = width / 2.0, height / 2.0
    corners = np.array([[-x, -y, 0.0], [x, -y, 0.0], [x, y, 0.0], [-x, y, 0.0]])
    roll = np.deg2rad(rng.uniform(-max_roll, max_roll))
    tilt = np.deg2rad(rng.uniform(0.0, max_tilt))
    phi = rng.uniform(0.0, 2.0 * np.pi)
    spin, _ = cv2.Rodrigues(np.array([0.0, 0.0, roll]))
    turn, _ = cv2.Rodrigues(np.array([np.cos(phi), np.sin(phi), 0.0]) * tilt)
    moved = corners @ (turn @ spin).T
    focal = 2.0 * max(width, height)
    depth = focal + moved[:, 2]
    return (focal * moved[:, :2] / depth[:, None]).astype(np.float32)


def _free(box: np.ndarray, taken: list[tuple[float, ...]]) -> bool:
    return all(
        box[2] + GAP <= t[0] or t[2] + GAP <= box[0] or box[3] + GAP <= t[1] or t[3] + GAP <= box[1]
        for t in taken
    )


def place(
    quad: np.ndarray, taken: list[tuple[float, ...]], rng: np.random.Generator, *, tries: int = 60
) -> np.ndarray | None:
    """``quad`` moved to a random spot fully inside the scene whose bounding box keeps
    :data:`GAP` pixels from every box in ``taken``; ``None`` when ``tries`` spots fail."""
    scene_h, scene_w = SCENE_HW
    lo = quad.min(axis=0)
    hi = quad.max(axis=0)
    span = hi - lo
    if span[0] > scene_w - 2 * BORDER or span[1] > scene_h - 2 * BORDER:
        return None
    for _ in range(tries):
        x = rng.uniform(BORDER, scene_w - BORDER - span[0])
        y = rng.uniform(BORDER, scene_h - BORDER - span[1])
        moved = quad - lo + np.array([x, y], dtype=np.float32)
        bbox = np.concatenate([moved.min(axis=0), moved.max(axis=0)])
        if _free(bbox, taken):
            return moved
    return None


@dataclass(frozen=True)
class Pasted:
    """One instance pasted into a scene.

    Attributes:
        box: ``(x0, y0, x1, y1)`` float, the box of ``mask`` (pixel edges).
        mask: ``HxW`` bool, pixels at least half covered by the product.
        quad: ``(4, 2)`` float32 corners in scene pixels.
    """

    box: tuple[float, float, float, float]
    mask: np.ndarray
    quad: np.ndarray


def paste(
    canvas: np.ndarray, product: np.ndarray, quad: np.ndarray, rng: np.random.Generator
) -> Pasted:
    """Paste ``product`` (uint8 RGB) onto ``canvas`` (float32 ``HxWx3``, changed in place)
    with its corners at ``quad`` (scene pixels), a soft edge and a soft drop shadow.

    The work is done in a window around ``quad`` wide enough for the shadow's blur, so
    nothing outside it changes.
    """
    scene_h, scene_w = canvas.shape[:2]
    height, width = product.shape[:2]
    pad = 32  # > shadow reach (6) + 3 sigma of its blur (15)
    x0, y0 = (max(0, int(np.floor(v)) - pad) for v in quad.min(axis=0))
    x1 = min(scene_w, int(np.ceil(quad[:, 0].max())) + pad)
    y1 = min(scene_h, int(np.ceil(quad[:, 1].max())) + pad)
    size = (x1 - x0, y1 - y0)
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32) - 0.5
    dst = quad - np.array([x0 + 0.5, y0 + 0.5], np.float32)
    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    face = cv2.warpPerspective(
        product.astype(np.float32),
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    cover = cv2.warpPerspective(
        np.ones((height, width), np.float32),
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    mask = np.zeros((scene_h, scene_w), bool)
    mask[y0:y1, x0:x1] = cover >= 0.5
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    box = (
        float(xs.min() + x0),
        float(ys.min() + y0),
        float(xs.max() + x0 + 1),
        float(ys.max() + y0 + 1),
    )
    window = canvas[y0:y1, x0:x1]
    # shadow: the blurred coverage, shifted away from a random light direction
    angle = rng.uniform(0.0, 2.0 * np.pi)
    reach = rng.uniform(1.5, 6.0)
    shift = np.float32([[1, 0, reach * np.cos(angle)], [0, 1, reach * np.sin(angle)]])
    shadow = cv2.warpAffine(cover, shift, size)
    shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(2.0, 5.0))
    window *= (1.0 - rng.uniform(0.15, 0.4) * shadow)[:, :, None]
    alpha = cv2.GaussianBlur(cover, (0, 0), rng.uniform(0.5, 1.0))[:, :, None]
    window *= 1.0 - alpha
    window += alpha * face
    return Pasted(box=box, mask=mask, quad=quad)


# -- photometric changes --------------------------------------------------------------------


def mild_relight(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A product under slightly different light: gain 0.85-1.15, channel gains +-5 %,
    offset +-8 grey levels. uint8 in, uint8 out."""
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, size=3)
    out = image.astype(np.float32) * gain.astype(np.float32) + np.float32(rng.uniform(-8, 8))
    return np.clip(out, 0, 255).round().astype(np.uint8)


def hue_rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` with every hue turned by ``degrees`` (HSV; saturation and value kept)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    steps = round(degrees / 2.0)  # OpenCV's 8-bit hue runs 0-179 in 2-degree steps
    hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int32) + steps) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def lookalike_turn(rng: np.random.Generator) -> float:
    """A hue turn for a colour look-alike: 70-150 degrees either way."""
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(70.0, 150.0))


@dataclass(frozen=True)
class Relight:
    """A strong scene-wide lighting change (see :func:`draw_relight`)."""

    gain: float
    contrast: float
    warmth: float
    ramp_angle: float
    ramp_floor: float
    ramp_centre: tuple[float, float]


def draw_relight(rng: np.random.Generator) -> Relight:
    """Darker (x0.45-0.7) or brighter (x1.3-1.7), contrast x0.55-1.5, colour temperature
    +-12-30 % (red against blue), and a shadow gradient down to 35-65 % of the light."""
    darker = rng.random() < 0.5
    gain = rng.uniform(0.45, 0.7) if darker else rng.uniform(1.3, 1.7)
    return Relight(
        gain=float(gain),
        contrast=float(rng.uniform(0.55, 1.5)),
        warmth=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.3)),
        ramp_angle=float(rng.uniform(0.0, 2.0 * np.pi)),
        ramp_floor=float(rng.uniform(0.35, 0.65)),
        ramp_centre=(float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))),
    )


def apply_relight(image: np.ndarray, light: Relight) -> np.ndarray:
    """Apply ``light`` to a float32 0-255 image (returns a new float32 image)."""
    height, width = image.shape[:2]
    out = (image - 128.0) * light.contrast + 128.0
    out = out * light.gain
    temperature = np.array([1.0 + light.warmth, 1.0, 1.0 - light.warmth], np.float32)
    out = out * temperature
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = light.ramp_centre[0] * width, light.ramp_centre[1] * height
    along = (xs - cx) * np.cos(light.ramp_angle) + (ys - cy) * np.sin(light.ramp_angle)
    ramp = np.clip(0.5 + along / max(height, width), 0.0, 1.0)
    out = out * (1.0 - (1.0 - light.ramp_floor) * ramp)[:, :, None]
    return np.clip(out, 0.0, 255.0).astype(np.float32)


@dataclass(frozen=True)
class Blur:
    """A camera blur followed by a loss of resolution (see :func:`draw_blur`)."""

    motion: bool
    size: float
    angle: float
    factor: float


def draw_blur(rng: np.random.Generator) -> Blur:
    """Motion blur (7-17 px, any direction) or Gaussian blur (sigma 1.2-2.8), then a
    downscale by 2-3.5 and back up."""
    motion = bool(rng.random() < 0.5)
    size = rng.uniform(7.0, 17.0) if motion else rng.uniform(1.2, 2.8)
    return Blur(motion, float(size), float(rng.uniform(0.0, np.pi)), float(rng.uniform(2, 3.5)))


def apply_blur(image: np.ndarray, blur: Blur) -> np.ndarray:
    """Apply ``blur`` to a float32 0-255 image (returns a new float32 image)."""
    if blur.motion:
        length = round(blur.size) | 1
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D(
            ((length - 1) / 2, (length - 1) / 2), np.rad2deg(blur.angle), 1.0
        )
        kernel = cv2.warpAffine(kernel, turn, (length, length))
        kernel /= kernel.sum()
        out = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
    else:
        out = cv2.GaussianBlur(image, (0, 0), blur.size)
    height, width = image.shape[:2]
    small = (round(width / blur.factor), round(height / blur.factor))
    out = cv2.resize(out, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """The decoded pixels of ``image`` (uint8 RGB) saved as JPEG at ``quality``."""
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


def save_rgb(path: str | os.PathLike[str], image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write a uint8 RGB image, its format from ``path``'s suffix (``params``: OpenCV's
    encoder flags, e.g. a JPEG quality or a PNG compression level).

    Raises:
        OSError: it cannot be written.
    """
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]), list(params)):
        raise OSError(f"cannot write {path}")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float32 0-255 image rounded and clipped to uint8."""
    return np.clip(image, 0.0, 255.0).round().astype(np.uint8)
