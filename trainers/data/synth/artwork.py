"""The printed face of a package: background, pattern, band, texts, logo, badge, barcode.

:func:`draw_artwork` turns an :class:`~trainers.data.synth.designs.Artwork` into a flat
RGB face of a given size; :mod:`trainers.data.synth.packaging` then wraps it onto a shape
(box front, bottle label, can body ...). Every random choice made here comes from
``Artwork.texture_seed`` (or a CRC of the flavour text, for what should differ between
lookalikes), so the same spec always gives the same pixels.

Layout, top to bottom: logo and badge, brand name, product line, the band with the
flavour on an accent-coloured pill, an illustration (fruit, swooshes or a photo window),
and the size text and barcode at the bottom. On narrow faces (tubes, slim bottles) the
brand runs vertically.
"""

from __future__ import annotations

import functools
import zlib

import cv2
import numpy as np
import skimage.data

from trainers.data.synth.designs import RGB, Artwork, Logo, TextStyle
from trainers.data.synth.text import draw_text, paint, text_mask


def draw_artwork(art: Artwork, *, height: int, width: int) -> np.ndarray:
    """Render the face of a package.

    Args:
        art: the artwork spec.
        height: face height, pixels.
        width: face width, pixels.

    Returns:
        ``(height, width, 3)`` float32 RGB in ``[0, 255]``.
    """
    rng = np.random.default_rng(art.texture_seed)
    h, w = height, width
    img = _gradient(art, h, w)
    _pattern(img, art, rng)
    narrow = w < 0.45 * h
    unit = min(h, w)
    r = max(6, round(unit * (0.1 if narrow else 0.075)))
    margin = max(3, round(unit * 0.04))
    logo_y = margin + r
    logo_x = {0: margin + r, 1: w // 2, 2: w - margin - r}[1 if narrow else art.logo.position]
    band_top = round((art.band_y - art.band_height / 2) * h)
    band_bottom = round((art.band_y + art.band_height / 2) * h)
    top = logo_y + r + margin // 2
    if narrow:
        draw_text(
            img,
            art.brand,
            art.brand_style,
            (margin, top, w - margin, band_top - margin),
            vertical=True,
        )
    else:
        brand_h = round(h * 0.13)
        brand_top = max(top, round(art.brand_y * h) - brand_h // 2)
        brand_top = min(brand_top, band_top - brand_h - round(0.07 * h))
        brand_top = max(brand_top, top)
        draw_text(
            img, art.brand, art.brand_style, (margin, brand_top, w - margin, brand_top + brand_h)
        )
        line_top = brand_top + brand_h + margin // 2
        line_h = min(round(h * 0.065), band_top - line_top - 2)
        draw_text(img, art.line, art.line_style, (w // 6, line_top, w - w // 6, line_top + line_h))
    _band(img, art, band_top, band_bottom)
    _flavour(img, art, band_top, band_bottom)
    foot = round(h * 0.88)
    _illustration(img, art, rng, (margin, band_bottom + margin, w - margin, foot - margin // 2))
    _logo(img, art.logo, art.brand_style, cx=logo_x, cy=logo_y, r=r)
    if art.badge:
        badge_x = w - margin - r if art.logo.position != 2 or narrow else margin + r
        if narrow:
            badge_x, badge_y = w // 2, band_bottom + margin + r
        else:
            badge_y = logo_y + r // 3
        _badge(img, art.badge, art.badge_colour, cx=badge_x, cy=badge_y, r=round(r * 1.15))
    size_top = max(foot, h - margin // 2 - round(0.075 * h))
    if art.barcode and not narrow:
        _barcode(img, art, (round(w * 0.66), foot, w - margin, h - margin // 2))
        size_box = (margin, size_top, round(w * 0.45), h - margin // 2)
    else:
        size_box = (margin, size_top, w - margin, h - margin // 2)
    draw_text(img, art.size_text, art.line_style, size_box)
    return img


# -- backgrounds ----------------------------------------------------------------------


def _gradient(art: Artwork, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if art.gradient == "vertical":
        t = yy / max(h - 1, 1)
    elif art.gradient == "horizontal":
        t = xx / max(w - 1, 1)
    elif art.gradient == "diagonal":
        t = (xx + yy) / max(w + h - 2, 1)
    elif art.gradient == "radial":
        t = np.hypot((xx - 0.5 * w) / w, (yy - 0.35 * h) / h) * 1.6
    else:
        t = np.zeros((h, w), np.float32)
    t = np.clip(t, 0, 1)[..., None]
    base, base2 = np.float32(art.base), np.float32(art.base2)
    return (base * (1 - t) + base2 * t).astype(np.float32)


def fractal_noise(rng: np.random.Generator, h: int, w: int, *, octaves: int = 4) -> np.ndarray:
    """Multi-octave value noise in ``[0, 1]``, ``(h, w)`` float32 (upsampled random grids)."""
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for o in range(octaves):
        cells = 3 * 2**o
        grid = rng.random((cells, max(2, round(cells * w / max(h, 1))))).astype(np.float32)
        out += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * 0.55**o
        total += 0.55**o
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _pattern(img: np.ndarray, art: Artwork, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    if art.pattern == "none":
        return
    s = art.pattern_scale
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.deg2rad(art.pattern_angle)
    u = xx * np.cos(t) + yy * np.sin(t)
    v = -xx * np.sin(t) + yy * np.cos(t)
    if art.pattern == "stripes":
        m = np.clip((np.sin(u * np.pi / s) - 0.2) * 4, 0, 1)
    elif art.pattern == "dots":
        du, dv = np.mod(u, 2 * s) - s, np.mod(v, 2 * s) - s
        m = np.clip(0.45 * s - np.hypot(du, dv) + 0.5, 0, 1)
    elif art.pattern == "waves":
        m = np.clip((np.sin((v + 0.6 * s * np.sin(u / s)) * np.pi / s) - 0.5) * 4, 0, 1)
    elif art.pattern == "checks":
        m = np.mod(np.floor(u / (2 * s)) + np.floor(v / (2 * s)), 2)
    elif art.pattern == "noise":
        m = fractal_noise(rng, h, w)
    else:  # confetti
        m8 = np.zeros((h, w), np.uint8)
        for _ in range(int(h * w / (s * s * 6)) + 5):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.uniform(0.2, 0.5) * s) + 1, int(rng.uniform(0.1, 0.25) * s) + 1)
            cv2.ellipse(m8, c, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
        m = m8.astype(np.float32) / 255.0
    a = (art.pattern_strength * m)[..., None].astype(np.float32)
    img *= 1 - a
    img += a * np.float32(art.pattern_colour)


# -- band and flavour -----------------------------------------------------------------


def _band(img: np.ndarray, art: Artwork, top: int, bottom: int) -> None:
    h, w = img.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    amp = (bottom - top) * 0.18
    if art.band_style == "wave":
        upper = top + amp * np.sin(xs / w * 2 * np.pi)
        lower = bottom + amp * np.sin(xs / w * 2 * np.pi + 0.8)
    elif art.band_style == "slant":
        upper = top + amp * 2 * (0.5 - xs / w)
        lower = bottom + amp * 2 * (0.5 - xs / w)
    else:
        upper = np.full(w, top, np.float32)
        lower = np.full(w, bottom, np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    m = np.clip(yy - upper[None] + 0.5, 0, 1) * np.clip(lower[None] - yy + 0.5, 0, 1)
    edge = np.clip(1 - np.abs(yy - upper[None]) / 1.5, 0, 1)  # thin accent rule on top
    paint(img, m.astype(np.float32), art.band_colour, top=0, left=0)
    paint(img, edge.astype(np.float32), art.accent, top=0, left=0)


def _flavour(img: np.ndarray, art: Artwork, top: int, bottom: int) -> None:
    h, w = img.shape[:2]
    ph = max(6, round((bottom - top) * 0.72))
    cy = (top + bottom) // 2
    pill = np.zeros((h, w), np.uint8)
    x0, x1 = round(w * 0.1), round(w * 0.9)
    rad = ph // 2
    cv2.rectangle(pill, (x0 + rad, cy - rad), (x1 - rad, cy + rad), 255, -1, cv2.LINE_AA)
    cv2.circle(pill, (x0 + rad, cy), rad, 255, -1, cv2.LINE_AA)
    cv2.circle(pill, (x1 - rad, cy), rad, 255, -1, cv2.LINE_AA)
    paint(img, pill.astype(np.float32) / 255.0, art.accent, top=0, left=0)
    lum = 0.299 * art.accent[0] + 0.587 * art.accent[1] + 0.114 * art.accent[2]
    ink: RGB = (25, 25, 30) if lum > 150 else (255, 255, 255)
    style = TextStyle(
        art.flavour_style.font, art.flavour_style.weight, ink, None, art.flavour_style.upper
    )
    pad = max(2, ph // 8)
    draw_text(
        img, art.flavour, style, (x0 + rad // 2, cy - rad + pad, x1 - rad // 2, cy + rad - pad)
    )


# -- illustration ---------------------------------------------------------------------


@functools.cache
def sample_photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as ``(H, W, 3)`` uint8 RGB (cached per process)."""
    img = getattr(skimage.data, name)()
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[:, :, :3])


def _illustration(img: np.ndarray, art: Artwork, rng: np.random.Generator, box) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if bw < 12 or bh < 12 or art.illustration == "none":
        return
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if art.illustration.startswith("photo:"):
        photo = sample_photo(art.illustration.split(":", 1)[1])
        ph, pw = photo.shape[:2]
        aspect = bw / bh
        ch = int(rng.uniform(0.45, 0.8) * min(ph, pw / aspect))
        cw = int(ch * aspect)
        sy, sx = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        crop = cv2.resize(photo[sy : sy + ch, sx : sx + cw], (bw, bh), interpolation=cv2.INTER_AREA)
        window = np.zeros((bh, bw), np.uint8)
        center, axes = (bw // 2, bh // 2), (bw // 2 - 2, bh // 2 - 2)
        cv2.ellipse(window, center, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
        ring = np.zeros((bh, bw), np.uint8)
        cv2.ellipse(ring, center, axes, 0, 0, 360, 255, max(2, bw // 40), cv2.LINE_AA)
        a = window.astype(np.float32)[..., None] / 255.0
        roi = img[y0:y1, x0:x1]
        roi *= 1 - a
        roi += a * crop.astype(np.float32)
        paint(img, ring.astype(np.float32) / 255.0, (250, 250, 250), top=y0, left=x0)
        return
    if art.illustration == "swoosh":
        layer = np.zeros(img.shape[:2], np.uint8)
        for i, colour in enumerate((art.accent, art.band_colour, art.accent)):
            layer[:] = 0
            axes = (int(bw * rng.uniform(0.5, 0.9)), int(bh * rng.uniform(0.3, 0.6)))
            centre = (int(cx + rng.uniform(-0.2, 0.2) * bw), int(y1 + axes[1] * 0.4))
            thick = max(2, int(bh * (0.12 - 0.03 * i)))
            cv2.ellipse(
                layer, centre, axes, float(rng.uniform(-15, 15)), 180, 360, 255, thick, cv2.LINE_AA
            )
            paint(img, layer.astype(np.float32) / 255.0, colour, top=0, left=0)
        return
    # fruit: a cluster of shaded spheres in the flavour colour, with leaves
    count = int(rng.integers(3, 6))
    rad = max(4, int(min(bw, bh) * rng.uniform(0.2, 0.28)))
    yy, xx = np.mgrid[0 : 2 * rad + 1, 0 : 2 * rad + 1].astype(np.float32) - rad
    dist = np.hypot(xx, yy) / rad
    sphere = np.clip((1 - dist) * rad * 0.7, 0, 1)
    shade = (0.55 + 0.45 * np.sqrt(np.clip(1 - dist**2, 0, 1)))[..., None]
    glint = np.exp(-((xx + 0.35 * rad) ** 2 + (yy + 0.35 * rad) ** 2) / (0.08 * rad * rad))
    for _ in range(count):
        px = int(cx + rng.uniform(-0.5, 0.5) * max(bw - 2 * rad, 0)) - rad
        py = int(cy + rng.uniform(-0.4, 0.4) * max(bh - 2 * rad, 0)) - rad
        leaf = np.zeros(img.shape[:2], np.uint8)
        cv2.ellipse(
            leaf,
            (px + rad, py),
            (max(2, rad // 2), max(1, rad // 5)),
            float(rng.uniform(-60, 60)),
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
        )
        paint(img, leaf.astype(np.float32) / 255.0, (60, 140, 50), top=0, left=0)
        body = np.float32(art.accent) * shade + 255 * 0.6 * glint[..., None]
        _paint_rgb(img, sphere, np.clip(body, 0, 255), top=py, left=px)


def _paint_rgb(img: np.ndarray, coverage: np.ndarray, rgb: np.ndarray, *, top: int, left: int):
    h, w = coverage.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, img.shape[0]), min(left + w, img.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    a = coverage[y0 - top : y1 - top, x0 - left : x1 - left, None]
    roi = img[y0:y1, x0:x1]
    roi *= 1 - a
    roi += a * rgb[y0 - top : y1 - top, x0 - left : x1 - left]


# -- logo, badge, barcode -------------------------------------------------------------


def _star(cx: float, cy: float, r_out: float, r_in: float, points: int, phase: float):
    angles = phase + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, r_out, r_in)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return np.round(pts).astype(np.int32)


def _logo(img: np.ndarray, logo: Logo, style: TextStyle, *, cx: int, cy: int, r: int) -> None:
    shape = np.zeros(img.shape[:2], np.uint8)
    if logo.kind in ("circle", "ring"):
        cv2.circle(shape, (cx, cy), r, 255, -1, cv2.LINE_AA)
    elif logo.kind == "shield":
        pts = np.array(
            [
                [cx - r, cy - r],
                [cx + r, cy - r],
                [cx + r, cy + r // 4],
                [cx, cy + r],
                [cx - r, cy + r // 4],
            ],
            np.int32,
        )
        cv2.fillPoly(shape, [pts], 255, cv2.LINE_AA)
    elif logo.kind == "star":
        cv2.fillPoly(shape, [_star(cx, cy, r * 1.1, r * 0.62, 6, -np.pi / 2)], 255, cv2.LINE_AA)
    elif logo.kind == "diamond":
        pts = np.array([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]], np.int32)
        cv2.fillPoly(shape, [pts], 255, cv2.LINE_AA)
    else:  # leaf
        cv2.ellipse(shape, (cx, cy), (r, max(2, r * 3 // 5)), -35, 0, 360, 255, -1, cv2.LINE_AA)
    paint(img, shape.astype(np.float32) / 255.0, logo.colour, top=0, left=0)
    if logo.kind == "ring":
        inner = np.zeros(img.shape[:2], np.uint8)
        cv2.circle(inner, (cx, cy), max(1, r * 3 // 4), 255, -1, cv2.LINE_AA)
        paint(img, inner.astype(np.float32) / 255.0, logo.ink, top=0, left=0)
        ink = logo.colour
    else:
        ink = logo.ink
    letter = TextStyle(style.font, 800, ink, None, True)
    half = max(2, round(r * 0.55))
    draw_text(img, logo.letter, letter, (cx - half, cy - half, cx + half, cy + half))
    mark = np.zeros(img.shape[:2], np.uint8)
    dot = max(1, r // 6)
    if logo.detail == 1:
        cv2.circle(mark, (cx + r * 2 // 3, cy - r * 2 // 3), dot, 255, -1, cv2.LINE_AA)
    elif logo.detail == 2:
        cv2.line(
            mark, (cx - half, cy + half + dot), (cx + half, cy + half + dot), 255, dot, cv2.LINE_AA
        )
    elif logo.detail == 3:
        for dx in (-1, 0, 1):
            cv2.circle(mark, (cx + dx * 2 * dot, cy + half + 2 * dot), dot, 255, -1, cv2.LINE_AA)
    paint(img, mark.astype(np.float32) / 255.0, ink, top=0, left=0)


def _badge(img: np.ndarray, text: str, colour: RGB, *, cx: int, cy: int, r: int) -> None:
    shape = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(shape, [_star(cx, cy, r, r * 0.8, 12, 0.0)], 255, cv2.LINE_AA)
    paint(img, shape.astype(np.float32) / 255.0, colour, top=0, left=0)
    style = TextStyle("sans", 850, (255, 255, 255), None, True)
    half = round(r * 0.62)
    draw_text(img, text, style, (cx - half, cy - half, cx + half, cy + half))


def _barcode(img: np.ndarray, art: Artwork, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if x1 - x0 < 16 or y1 - y0 < 8:
        return
    rng = np.random.default_rng(zlib.crc32(f"{art.brand}|{art.flavour}".encode()))
    img[y0:y1, x0:x1] = 250.0
    text_h = max(3, (y1 - y0) // 4)
    bars = np.zeros(x1 - x0 - 4, np.float32)
    x = 0
    while x < bars.size:
        width = int(rng.integers(1, 4))
        bars[x : x + width] = 1.0 if rng.random() < 0.55 else 0.0
        x += width
    img[y0 + 2 : y1 - text_h - 1, x0 + 2 : x1 - 2] *= (1 - 0.9 * bars)[None, :, None]
    digits = "".join(str(d) for d in rng.integers(0, 10, 13))
    mask = text_mask(
        digits,
        TextStyle("sans", 400, (0, 0, 0), None, False),
        max_height=text_h,
        max_width=x1 - x0 - 4,
    )
    if mask.size:
        paint(img, mask, (20, 20, 20), top=y1 - text_h - 1, left=x0 + 2)
