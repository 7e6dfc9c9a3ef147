"""Scene backgrounds: store shelves, table surfaces and real photos.

Three families, matching the three scene layouts:

- **shelf**: a wall with 2-4 shelf boards (a lit top surface, a front lip with price
  tags, the shadow under each board); returns where products can stand.
- **surface**: a table or floor seen from above: wood planks, tiles, fabric/stone noise,
  a studio gradient, or one of scikit-image's grey texture photos (brick, gravel, grass)
  tinted.
- **photo**: a crop of one of scikit-image's colour sample photos (all ship in the wheel;
  nothing is downloaded).

Every function draws from the ``rng`` it is given and returns float32 RGB in [0, 255].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trainers.data.synth.artwork import fractal_noise, sample_photo
from trainers.data.synth.designs import hsv

COLOUR_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
)
TEXTURE_PHOTOS = ("brick", "gravel", "grass", "moon", "camera")


@dataclass(frozen=True)
class Background:
    """A scene background.

    Attributes:
        image: ``(H, W, 3)`` float32 RGB in ``[0, 255]``.
        kind: what was drawn, e.g. ``"shelf"``, ``"wood"``, ``"photo:coffee"``.
        shelves: for shelves, ``(space_top, surface_y)`` rows of each level: products
            stand on ``surface_y`` and must stay below ``space_top``; empty otherwise.
    """

    image: np.ndarray
    kind: str
    shelves: tuple[tuple[int, int], ...] = ()


def _vertical(h: int, w: int, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    col = top * (1 - t) + bottom * t
    return np.repeat(col, w, axis=1).astype(np.float32)


def _grain(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    h, w = img.shape[:2]
    noise = fractal_noise(rng, h, w, octaves=3) - 0.5
    img += (amount * noise)[..., None]
    return img


def shelf_background(rng: np.random.Generator, height: int, width: int) -> Background:
    """A store shelf: wall, boards with price strips, and the spaces products stand in."""
    h, w = height, width
    wall = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0, 0.25), rng.uniform(0.55, 0.95)))
    img = _vertical(h, w, wall * 1.05, wall * 0.85)
    _grain(img, rng, 12.0)
    if rng.random() < 0.3:  # pegboard
        step = int(rng.integers(14, 26))
        yy, xx = np.mgrid[0:h, 0:w]
        holes = np.hypot(xx % step - step / 2, yy % step - step / 2) < step * 0.14
        img[holes] *= 0.55
    levels = int(rng.integers(2, 5))
    gap = h / levels
    offset = rng.uniform(-0.25, 0.15) * gap
    lip = max(6, round(gap * rng.uniform(0.1, 0.16)))
    top_depth = max(2, round(lip * rng.uniform(0.3, 0.7)))
    board = np.float32(rng.choice([(235, 235, 232), (120, 122, 128), (60, 60, 64), (176, 132, 88)]))
    strip = np.float32(rng.choice([(245, 245, 245), (250, 222, 70), (240, 240, 210)]))
    shelves = []
    prev_bottom = 0
    for i in range(levels + 1):
        surface = round(offset + (i + 1) * gap - lip)
        if surface - top_depth >= h or surface + lip <= 0:
            prev_bottom = surface + lip
            continue
        y0, y1 = max(surface - top_depth, 0), min(surface, h)
        if y1 > y0:
            img[y0:y1] = board * 1.12  # lit top of the board
        y0, y1 = max(surface, 0), min(surface + lip, h)
        if y1 > y0:
            img[y0:y1] = board * 0.92
            s0, s1 = max(surface + lip // 5, 0), min(surface + lip - lip // 5, h)
            if s1 > s0:
                img[s0:s1] = strip
                _price_tags(img, rng, s0, s1)
        shadow_end = min(surface + lip + 2 * lip, h)
        y_shadow = max(surface + lip, 0)
        if shadow_end > y_shadow:
            t = np.linspace(0.55, 1.0, shadow_end - y_shadow, dtype=np.float32)[:, None, None]
            img[y_shadow:shadow_end] *= t
        space_top = max(prev_bottom, 0)
        if surface - top_depth - space_top > 0.3 * gap and surface > 0.25 * gap:
            shelves.append((space_top, surface - top_depth // 2))
        prev_bottom = surface + lip
    return Background(np.clip(img, 0, 255), "shelf", tuple(shelves))


def _price_tags(img: np.ndarray, rng: np.random.Generator, y0: int, y1: int) -> None:
    h_tag = y1 - y0
    if h_tag < 6:
        return
    x = int(rng.integers(5, 60))
    while x < img.shape[1] - 10:
        tw = int(h_tag * rng.uniform(1.8, 2.6))
        tag = np.empty((h_tag, tw, 3), np.uint8)
        tag[:] = (255, 255, 255) if rng.random() < 0.7 else (250, 200, 40)
        price = f"{rng.integers(0, 20)}.{rng.integers(0, 100):02d}"
        (text_w, _), _ = cv2.getTextSize(price, cv2.FONT_HERSHEY_DUPLEX, 1.0, 2)
        scale = min(h_tag / 30, (tw - 4) / text_w)
        cv2.putText(
            tag,
            price,
            (2, h_tag - max(1, h_tag // 5)),
            cv2.FONT_HERSHEY_DUPLEX,
            scale,
            (30, 30, 30),
            max(1, round(scale * 1.5)),
            cv2.LINE_AA,
        )
        visible = img[y0:y1, x : x + tw]
        visible[:] = tag[:, : visible.shape[1]]
        x += tw + int(rng.integers(40, 160))


def surface_background(rng: np.random.Generator, height: int, width: int) -> Background:
    """A table or floor: wood, tiles, fabric, a studio gradient or a tinted texture photo."""
    h, w = height, width
    kind = str(
        rng.choice(["wood", "tiles", "fabric", "gradient", "texture"], p=[0.3, 0.2, 0.2, 0.1, 0.2])
    )
    if kind == "wood":
        light = np.float32(hsv(rng.uniform(18, 40), rng.uniform(0.3, 0.65), rng.uniform(0.5, 0.9)))
        dark = light * np.float32(rng.uniform(0.55, 0.75))
        # grain: stripes along x, bent by noise that varies slowly along x (long streaks)
        noise = fractal_noise(rng, h, max(8, w // 10), octaves=4)
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
        period = rng.uniform(6, 16)
        yy = np.arange(h, dtype=np.float32)[:, None]
        t = 0.5 + 0.5 * np.sin((yy / period + 1.5 * noise) * 2 * np.pi)
        t = t**2 * 0.7 + 0.3 * fractal_noise(rng, h, w, octaves=2)
        img = dark + (light - dark) * t[..., None]
        plank = int(rng.integers(50, 130))
        for y in range(int(rng.integers(0, plank)), h, plank):
            img[y : y + plank] *= np.float32(rng.uniform(0.88, 1.1))
            img[y : y + 2] *= 0.55
    elif kind == "tiles":
        tile = int(rng.integers(40, 130))
        base = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0, 0.35), rng.uniform(0.45, 0.95)))
        img = np.empty((h, w, 3), np.float32)
        img[:] = base
        grout = base * np.float32(rng.uniform(0.5, 0.8))
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                img[y : y + tile, x : x + tile] *= np.float32(rng.uniform(0.92, 1.08))
        line = max(1, tile // 25)
        img[np.arange(h) % tile < line] = grout
        img[:, np.arange(w) % tile < line] = grout
        _grain(img, rng, 14.0)
    elif kind == "fabric":
        a = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.9)))
        b = a * np.float32(rng.uniform(0.6, 0.85))
        t = fractal_noise(rng, h, w, octaves=5)[..., None]
        img = a * (1 - t) + b * t
        weave = (np.add.outer(np.arange(h) % 4 < 2, np.arange(w) % 4 < 2) % 2)[..., None]
        img *= 1 - 0.05 * weave.astype(np.float32)
    elif kind == "gradient":
        a = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0, 0.3), rng.uniform(0.6, 1.0)))
        img = _vertical(h, w, a, a * np.float32(rng.uniform(0.55, 0.85)))
    else:
        name = str(rng.choice(TEXTURE_PHOTOS))
        kind = f"texture:{name}"
        img = _photo_crop(rng, sample_photo(name), h, w)
        tint = np.float32(hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.5), 1.0)) / 255.0
        img *= tint
    return Background(np.clip(img, 0, 255).astype(np.float32), kind)


def photo_background(rng: np.random.Generator, height: int, width: int) -> Background:
    """A crop of one of scikit-image's colour sample photos, resized to the scene."""
    name = str(rng.choice(COLOUR_PHOTOS))
    img = _photo_crop(rng, sample_photo(name), height, width)
    if rng.random() < 0.5:
        img = img[:, ::-1].copy()
    return Background(img, f"photo:{name}")


def _photo_crop(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    ph, pw = photo.shape[:2]
    aspect = w / h
    ch = int(min(ph, pw / aspect) * rng.uniform(0.55, 1.0))
    cw = int(ch * aspect)
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR
    return cv2.resize(crop, (w, h), interpolation=interp).astype(np.float32)
