"""Package shapes: wrap a printed face onto a box, bottle, can, jar, pouch or tube.

:func:`render_product` is the single entry point: ``ProductSpec -> RGBA``. Each shape class
is a silhouette given by its half-width per row (anti-aliased analytically), a flat
"body" layer holding the artwork where the label sits, an optional remap that bends the
label (the ellipse of a cylinder seen from slightly above, the taper of a tube), caps and
lids painted on top, and a shading model (Lambertian cylinder with a specular stripe,
pillow shading for pouches, face-dependent light for boxes).

Shape shorthand: ``H, W`` design height/width; ``R`` half of ``W``; ``hw`` the per-row
half-width; ``u`` the horizontal position across a cylinder in ``[-1, 1]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from trainers.data.synth.artwork import draw_artwork
from trainers.data.synth.designs import RGB, ProductSpec


def face_size(spec: ProductSpec) -> tuple[int, int]:
    """``(height, width)`` in pixels of the printed face (label) of a product."""
    h, w = spec.height, spec.width
    fraction = {"box": 1.0, "bottle": 0.56, "can": 0.78, "jar": 0.55, "pouch": 0.93, "tube": 0.69}[
        spec.shape
    ]
    return max(8, round(h * fraction)), w


def render_product(spec: ProductSpec) -> np.ndarray:
    """Render a product design.

    Args:
        spec: the product.

    Returns:
        ``(H, W, 4)`` uint8 RGBA with straight (not premultiplied) alpha; ``H, W`` are
        ``spec.height, spec.width`` plus ``spec.depth`` for boxes seen in 3/4 view.
    """
    fh, fw = face_size(spec)
    art = draw_artwork(spec.artwork, height=fh, width=fw)
    if spec.shape == "box":
        rgb, alpha = _box(spec, art)
    else:
        rgb, alpha = _round_package(spec, art)
    out = np.empty((*alpha.shape, 4), np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255)
    out[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255)
    return out


# -- box ------------------------------------------------------------------------------


def _box(spec: ProductSpec, art: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fh, fw, d = spec.height, spec.width, spec.depth
    H, W = fh + d, fw + d
    rgb = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.float32)
    light = np.linspace(1.04, 0.9, fh, dtype=np.float32)[:, None, None]
    rgb[d:, :fw] = art * light
    alpha[d:, :fw] = 1.0
    if d:
        side_src = np.float32([[0, 0], [fw, 0], [0, fh]])
        side_dst = np.float32([[fw, d], [W, 0], [fw, H]])
        m = cv2.getAffineTransform(side_src, side_dst)
        side = cv2.warpAffine(art, m, (W, H), flags=cv2.INTER_AREA)
        side_a = cv2.warpAffine(np.ones((fh, fw), np.float32), m, (W, H), flags=cv2.INTER_LINEAR)
        top = np.zeros((H, W), np.uint8)
        pts = np.array([[0, d], [d, 0], [W, 0], [fw, d]], np.int32)
        cv2.fillPoly(top, [pts], 255, cv2.LINE_AA)
        top_a = top.astype(np.float32) / 255.0
        top_a[d:] = 0
        side_a[:, :fw] = 0
        top_colour = np.clip(art[: max(1, fh // 10)].mean(axis=(0, 1)) * 1.12 + 12, 0, 255)
        for a, colour in ((side_a, side * 0.62), (top_a, top_colour)):
            a3 = a[..., None]
            rgb = rgb * (1 - a3) + colour * a3
            alpha = np.maximum(alpha, a)
        rgb[d : d + 1, :fw] = np.minimum(rgb[d : d + 1, :fw] + 40, 255)  # lit front-top edge
    return rgb, alpha


# -- round packages (bottle, can, jar, pouch, tube) -----------------------------------


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0, 1)
    return t * t * (3 - 2 * t)


def _round_package(spec: ProductSpec, art: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    H, W = spec.height, spec.width
    R = W / 2 - 0.5
    cx = (W - 1) / 2
    y = np.arange(H, dtype=np.float32)
    x = np.arange(W, dtype=np.float32)
    fh = art.shape[0]
    body = np.empty((H, W, 3), np.float32)
    body[:] = np.float32(spec.body_colour)
    caps: list[tuple[int, int, RGB, float]] = []  # (row0, row1, colour, ridge period)
    bend = 0.0  # ellipse depth of the label, pixels
    ambient, gloss = 0.58, 0.45
    if spec.shape == "bottle":
        cap_end, neck_end = round(0.09 * H), round(0.18 * H)
        shoulder_end = round(0.31 * H)
        hw = np.full(H, R, np.float32)
        hw[:cap_end] = 0.22 * W
        hw[cap_end:neck_end] = 0.17 * W
        t = _smooth((y - neck_end) / max(shoulder_end - neck_end, 1))
        sel = (y >= neck_end) & (y < shoulder_end)
        hw[sel] = 0.17 * W + (R - 0.17 * W) * np.sin(t[sel] * np.pi / 2)
        hw = _round_bottom(hw, y, R, 0.1 * W)
        label_top = round(0.35 * H)
        caps.append((0, cap_end, spec.cap_colour, 3.0))
        bend = 0.03 * W
    elif spec.shape == "can":
        e = max(2.0, 0.09 * W)
        hw = np.full(H, R, np.float32)
        top, bottom = y < e, y > H - 1 - e
        hw[top] = R * np.sqrt(np.clip(1 - ((e - y[top]) / e) ** 2, 0, 1))
        hw[bottom] = R * np.sqrt(np.clip(1 - ((y[bottom] - (H - 1 - e)) / e) ** 2, 0, 1))
        label_top = (H - fh) // 2
        body[:] = np.float32((200, 202, 208))
        bend = e
        ambient, gloss = 0.45, 0.7
    elif spec.shape == "jar":
        lid_end, neck_end = round(0.15 * H), round(0.19 * H)
        hw = np.full(H, R, np.float32)
        hw[:lid_end] = 0.46 * W
        hw[lid_end:neck_end] = 0.4 * W
        r = 0.14 * W
        sel = (y >= neck_end) & (y < neck_end + r)
        hw[sel] = 0.4 * W + (R - 0.4 * W) * np.sqrt(
            np.clip(1 - ((neck_end + r - y[sel]) / r) ** 2, 0, 1)
        )
        hw = _round_bottom(hw, y, R, 0.14 * W)
        label_top = round(0.3 * H)
        caps.append((0, lid_end, spec.cap_colour, 4.0))
        bend = 0.06 * W
    elif spec.shape == "pouch":
        seal = H - fh
        hw = R * (0.92 + 0.08 * np.sin(np.pi * y / H)).astype(np.float32)
        hw = _round_bottom(hw, y, float(hw[-1]), 0.1 * W)
        notch = seal + round(0.03 * H)
        k = max(2, round(0.02 * H))
        sel = np.abs(y - notch) < k
        hw[sel] -= k - np.abs(y[sel] - notch)
        label_top = seal
        caps.append((0, seal, tuple(int(c * 0.82) for c in spec.artwork.base), 3.0))
        ambient, gloss = 0.7, 0.25
    else:  # tube, standing on its cap
        crimp, body_end = round(0.06 * H), round(0.8 * H)
        shoulder_end = round(0.86 * H)
        hw = np.full(H, R, np.float32)
        sel = (y >= crimp) & (y < body_end)
        hw[sel] = R - 0.18 * R * (y[sel] - crimp) / (body_end - crimp)
        t = _smooth((y - body_end) / max(shoulder_end - body_end, 1))
        sel = (y >= body_end) & (y < shoulder_end)
        hw[sel] = 0.82 * R + (0.5 * R - 0.82 * R) * t[sel]
        hw[shoulder_end:] = 0.5 * R
        hw = _round_bottom(hw, y, 0.5 * R, 0.12 * W)
        label_top = round(0.08 * H)
        caps.append((0, crimp, tuple(int(c * 0.9) for c in spec.body_colour), 2.0))
        caps.append((shoulder_end, H, spec.cap_colour, 0.0))
        ambient, gloss = 0.72, 0.3
    body[label_top : label_top + fh] = art[: H - label_top]
    alpha = np.clip(hw[:, None] - np.abs(x[None, :] - cx) + 0.5, 0, 1).astype(np.float32)
    u = np.clip((x[None, :] - cx) / np.maximum(hw[:, None], 1.0), -1, 1)
    curve = np.sqrt(np.clip(1 - u * u, 0, 1)).astype(np.float32)
    if bend or spec.shape == "tube":
        map_x = np.broadcast_to(x[None, :], (H, W)).astype(np.float32)
        if spec.shape == "tube":  # print follows the taper
            map_x = (cx + (map_x - cx) * R / np.maximum(hw[:, None], 1.0)).astype(np.float32)
        map_y = (y[:, None] - bend * curve).astype(np.float32)
        body = cv2.remap(body, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    for row0, row1, colour, period in caps:
        cap = np.float32(colour) * np.ones((row1 - row0, W, 1), np.float32)
        if period:
            ridges = 0.9 + 0.1 * np.cos(np.arange(W, dtype=np.float32) * 2 * np.pi / period)
            if spec.shape in ("tube", "pouch"):  # crimped seals: ridges across
                ridges = 0.9 + 0.1 * np.cos(np.arange(row1 - row0) * 2 * np.pi / period)[:, None]
                cap *= ridges[..., None]
            else:
                cap *= ridges[None, :, None]
        body[row0:row1] = cap
    if spec.shape == "can":
        _can_lid(body, cx=cx, R=R, e=bend)
    shade = ambient + (1 - ambient) * curve
    if spec.shape == "pouch":
        v = (y[:, None] - H / 2) / (H / 2)
        shade = 1 - 0.25 * np.abs(u) ** 3 - 0.12 * v**4
    highlight = gloss * np.exp(-(((u + 0.42) / 0.13) ** 2))
    rgb = body * shade[..., None] + 255.0 * highlight[..., None] * 0.5
    return rgb.astype(np.float32), alpha


def _round_bottom(hw: np.ndarray, y: np.ndarray, R: float, r: float) -> np.ndarray:
    """Round the two bottom corners of a silhouette with radius ``r``."""
    H = len(hw)
    sel = y > H - 1 - r
    dy = y[sel] - (H - 1 - r)
    hw = hw.copy()
    hw[sel] = np.minimum(hw[sel], R - r + np.sqrt(np.clip(r * r - dy * dy, 0, None)))
    return hw


def _can_lid(body: np.ndarray, *, cx: float, R: float, e: float) -> None:
    """Paint the top lid of a can (metal ellipse with a rim) in place."""
    h = int(2 * e) + 2
    lid = np.zeros((h, body.shape[1]), np.uint8)
    centre, axes = (round(cx), round(e)), (round(R), max(1, round(e)))
    cv2.ellipse(lid, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    inner = np.zeros_like(lid)
    cv2.ellipse(
        inner, centre, (round(R * 0.82), max(1, round(e * 0.7))), 0, 0, 360, 255, -1, cv2.LINE_AA
    )
    a = lid.astype(np.float32)[..., None] / 255.0
    b = inner.astype(np.float32)[..., None] / 255.0
    metal = np.float32((215, 217, 222))
    top = body[:h]
    top[:] = top * (1 - a) + metal * a
    top[:] = top * (1 - b) + metal * 0.8 * b
