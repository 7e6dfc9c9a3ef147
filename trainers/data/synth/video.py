"""Short tracking videos from the synthetic generator: a product moving over a table.

Each sequence draws from its own generator, ``SeedSequence(seed, spawn_key=(VIDEO_KEY,
index))``. A plan fixes, per frame, what happens:

- the target product (one of the catalog's designs) moves along a smooth random walk with
  a few abrupt turns (*motion change*), grows and shrinks (*size change*), and turns in
  the image plane (much more for the VOT layouts, whose truth is a rotated rectangle);
- the camera pans over a larger background (*camera motion*);
- the light dims or brightens for a while (*illumination change*);
- a clutter item sweeps across the target (*occlusion*; large enough to hide it entirely
  where the layout can express absence);
- where the layout can express it, the target leaves the image and comes back;
- a lookalike of the target and clutter items lie still on the table.

:func:`render_video` yields one :class:`VideoFrame` (image and truth per target) at a
time, so long sequences never sit in memory.

Shape shorthand: ``quad`` ``(4, 2)`` float32 corners TL, TR, BR, BL in image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from trainers.data.synth.backgrounds import photo_background, surface_background
from trainers.data.synth.bank import PreparedProduct, prepare
from trainers.data.synth.clutter import clutter_item
from trainers.data.synth.compositing import Canvas
from trainers.data.synth.designs import ProductSpec

VIDEO_KEY = 5
#: VOT's per-frame tags, as the VOT layouts write them.
TAGS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")


@dataclass(frozen=True)
class VideoSettings:
    """How one sequence is made.

    Attributes:
        frames: frames in the sequence (>= 2).
        size: ``(height, width)`` of the frames.
        targets: annotated targets (OTB's two-target sequences use 2).
        leave_frame: the target may leave the image (and be fully occluded).
        rotate: large in-plane rotation (VOT's rotated-rectangle truth).
    """

    frames: int
    size: tuple[int, int]
    targets: int = 1
    leave_frame: bool = False
    rotate: bool = False


@dataclass(frozen=True)
class TargetTruth:
    """One target in one frame.

    Attributes:
        quad: the product's rotated rectangle (may extend beyond the image).
        box: ``x, y, w, h`` of its pixels inside the image (occluded ones included), or
            ``None`` when none is inside.
        inside: fraction of its pixels inside the image.
        visible: fraction of its pixels inside the image and not occluded.
    """

    quad: np.ndarray
    box: tuple[float, float, float, float] | None
    inside: float
    visible: float


@dataclass(frozen=True)
class VideoFrame:
    """One frame: ``image`` ``(H, W, 3)`` uint8 RGB, the truth of every target, and the
    VOT tags set on this frame."""

    image: np.ndarray
    targets: tuple[TargetTruth, ...]
    tags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class _Plan:
    centers: np.ndarray  # (T, F, 2) world coordinates
    heights: np.ndarray  # (T, F)
    angles: np.ndarray  # (T, F) degrees
    camera: np.ndarray  # (F, 2) top-left of the view in the world
    gain: np.ndarray  # (F,)
    occluder: np.ndarray  # (F, 2) world top-left of the occluder (NaN: none)
    occluder_side: int
    margin: int


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sequence ``index`` of a dataset with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(VIDEO_KEY, index)))


def _window(rng: np.random.Generator, frames: int, fraction: float) -> tuple[int, int]:
    """A random window of about ``fraction`` of the frames, never containing frame 0."""
    length = max(2, round(frames * fraction))
    start = int(rng.integers(1, max(2, frames - length + 1)))
    return start, min(frames, start + length)


def _plan(rng: np.random.Generator, settings: VideoSettings, aspects: list[float]) -> _Plan:
    n = settings.frames
    h, w = settings.size
    margin = max(8, round(0.1 * min(h, w)))
    t_count = settings.targets
    centers = np.zeros((t_count, n, 2))
    heights = np.zeros((t_count, n))
    angles = np.zeros((t_count, n))
    step = max(1.0, 0.01 * min(h, w))  # pixels a frame
    lo = np.array([margin + 0.15 * w, margin + 0.15 * h])
    hi = np.array([margin + 0.85 * w, margin + 0.85 * h])
    for k in range(t_count):
        base = min(h, w) * rng.uniform(0.28, 0.42) / max(1.0, math.sqrt(aspects[k]))
        pos = np.array([w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7)]) + margin
        vel = rng.normal(0, step, 2)
        turns = set(rng.choice(np.arange(1, n), size=min(n - 1, max(1, n // 12)), replace=False))
        amp, phase = rng.uniform(0.12, 0.3), rng.uniform(0, 2 * math.pi)
        period = rng.uniform(0.6, 1.5) * max(n, 40)
        spin = rng.uniform(-1, 1) * (90 if settings.rotate else 15) / max(n, 40)
        angle = rng.uniform(-25, 25) if settings.rotate else rng.uniform(-4, 4)
        for i in range(n):
            if i in turns:
                vel = rng.normal(0, 2.5 * step, 2)
            vel = 0.85 * vel + rng.normal(0, 0.3 * step, 2)
            pos = pos + vel
            vel = np.where((pos < lo) & (vel < 0) | (pos > hi) & (vel > 0), -vel, vel)
            pos = np.clip(pos, lo - 0.1 * w, hi + 0.1 * w)
            centers[k, i] = pos
            heights[k, i] = base * math.exp(amp * math.sin(2 * math.pi * i / period + phase))
            angles[k, i] = angle + spin * i
    # The camera pans in one direction over part of the sequence.
    camera = np.zeros((n, 2))
    a, b = _window(rng, n, 0.5)
    pan = rng.uniform(-1, 1, 2) * margin / max(1, b - a)
    for i in range(1, n):
        camera[i] = camera[i - 1] + (pan if a <= i < b else 0)
    camera = np.round(np.clip(camera + margin, 0, 2 * margin))  # whole pixels: the crop
    # The light changes for a while.
    gain = np.ones(n)
    a, b = _window(rng, n, 0.3)
    level = rng.choice([0.55, 1.35])
    gain[a:b] = 1 + (level - 1) * _bump(b - a)
    # The target leaves the image and comes back.
    if settings.leave_frame and n >= 4:
        a, b = _window(rng, n, 0.3)
        side = int(rng.integers(0, 4))
        bump = _bump(b - a) * 1.6
        reach = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]][side]) * np.array([w, h]) * 0.75
        centers[0, a:b] += bump[:, None] * reach
    # An occluder sweeps across the first target.
    occluder = np.full((n, 2), np.nan)
    side = round(heights[0].mean() * (1.4 if settings.leave_frame else 0.6))
    a, b = _window(rng, n, 0.35)
    direction = rng.choice([-1, 1])
    for j, i in enumerate(range(a, b)):
        t = (j + 0.5) / max(1, b - a)
        cx = centers[0, i, 0] + direction * (t - 0.5) * 2.5 * heights[0, i]
        occluder[i] = (cx - side / 2, centers[0, i, 1] - side / 2)
    return _Plan(centers, heights, angles, camera, gain, occluder, side, margin)


def _bump(length: int) -> np.ndarray:
    """``(length,)`` half a sine wave, positive at every frame of the window."""
    return np.sin(np.linspace(0, math.pi, length + 2)[1:-1])


def _quad(center: np.ndarray, height: float, aspect: float, angle: float) -> np.ndarray:
    w = height * aspect
    pts = np.array(
        [[-w / 2, -height / 2], [w / 2, -height / 2], [w / 2, height / 2], [-w / 2, height / 2]]
    )
    t = math.radians(angle)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    return (pts @ rot.T + center).astype(np.float32)


def _tags(plan: _Plan, index: int, occluded: float) -> frozenset[str]:
    if index == 0:
        return frozenset({"occlusion"} if occluded > 0.2 else ())
    tags = set()
    if np.any(plan.camera[index] != plan.camera[index - 1]):
        tags.add("camera_motion")
    if abs(plan.gain[index] - plan.gain[index - 1]) > 0.01:
        tags.add("illum_change")
    if index >= 2:
        v1 = plan.centers[0, index] - plan.centers[0, index - 1]
        v0 = plan.centers[0, index - 1] - plan.centers[0, index - 2]
        if np.linalg.norm(v1 - v0) > 0.4 * max(1.0, np.linalg.norm(v0)):
            tags.add("motion_change")
    if abs(plan.heights[0, index] / plan.heights[0, index - 1] - 1) > 0.01:
        tags.add("size_change")
    if occluded > 0.2:
        tags.add("occlusion")
    return frozenset(tags)


def render_video(
    specs: list[ProductSpec], settings: VideoSettings, rng: np.random.Generator
) -> Iterator[VideoFrame]:
    """Render a sequence frame by frame.

    Args:
        specs: ``settings.targets`` target products, then a lookalike shown still.
        settings: frames, size, targets, what may happen.
        rng: the sequence's generator (consumed).

    Yields:
        One :class:`VideoFrame` per frame.
    """
    h, w = settings.size
    products: list[PreparedProduct] = [prepare(s) for s in specs]
    plan = _plan(rng, settings, [p.aspect for p in products])
    m = plan.margin
    world_h, world_w = h + 2 * m, w + 2 * m
    maker = surface_background if rng.random() < 0.7 else photo_background
    world = maker(rng, world_h, world_w).image
    still = []
    for _ in range(int(rng.integers(2, 5))):
        size = int(min(h, w) * rng.uniform(0.12, 0.25))
        rgb, alpha = clutter_item(rng, size)
        still.append((rgb, alpha, rng.uniform(0, world_w - size), rng.uniform(0, world_h - size)))
    lookalike = None
    if len(products) > settings.targets:
        height = plan.heights[0].mean() * rng.uniform(0.8, 1.1)
        spot = np.array([rng.uniform(0.1, 0.9) * world_w, rng.uniform(0.1, 0.9) * world_h])
        lookalike = (products[settings.targets], spot, height, rng.uniform(-10, 10))
    occ_rgb, occ_alpha = clutter_item(rng, max(8, plan.occluder_side))
    for i in range(settings.frames):
        cam = plan.camera[i]
        view = world[int(cam[1]) : int(cam[1]) + h, int(cam[0]) : int(cam[0]) + w].copy()
        canvas = Canvas(view)
        for rgb, alpha, x, y in still:
            canvas.place_item(
                rgb, alpha, left=round(x - cam[0]), top=round(y - cam[1]), occlude=False
            )
        if lookalike is not None:
            product, spot, height, angle = lookalike
            quad = _quad(spot - cam, height, product.aspect, angle)
            canvas.place_product(
                product, quad, annotate=False, gain=np.ones(3, np.float32), shadow=0.3
            )
        quads, inside = [], []
        for k in range(settings.targets):
            product = products[k]
            quad = _quad(
                plan.centers[k, i] - cam, plan.heights[k, i], product.aspect, plan.angles[k, i]
            )
            before = len(canvas.product_ids)
            canvas.place_product(
                product, quad, annotate=True, gain=np.ones(3, np.float32), shadow=0.3
            )
            quads.append(quad)
            inside.append(before < len(canvas.product_ids))
        masks_before = _target_masks(canvas, inside)
        if not np.isnan(plan.occluder[i, 0]):
            left, top = plan.occluder[i] - cam
            canvas.place_item(occ_rgb, occ_alpha, left=round(left), top=round(top), occlude=True)
        masks_after = _target_masks(canvas, inside)
        truths = []
        for k in range(settings.targets):
            full = canvas.full_areas[_slot(inside, k)] if inside[k] else 0
            mask = masks_before[k]
            area_in = int(mask.sum()) if mask is not None else 0
            area_vis = int(masks_after[k].sum()) if masks_after[k] is not None else 0
            box = None
            if area_in > 0:
                ys, xs = np.nonzero(mask)
                box = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                       float(ys.max() - ys.min() + 1))  # fmt: skip
            truths.append(
                TargetTruth(
                    quads[k],
                    box,
                    area_in / full if full else 0.0,
                    area_vis / full if full else 0.0,
                )
            )
        image = np.clip(canvas.image * plan.gain[i], 0, 255).astype(np.uint8)
        occluded = 1 - truths[0].visible / truths[0].inside if truths[0].inside > 0 else 0.0
        yield VideoFrame(image, tuple(truths), _tags(plan, i, occluded))


def _slot(inside: list[bool], k: int) -> int:
    """Index of target ``k`` among the canvas's annotated instances."""
    return sum(inside[:k])


def _target_masks(canvas: Canvas, inside: list[bool]) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for k, placed in enumerate(inside):
        out.append(canvas.label == _slot(inside, k) + 1 if placed else None)
    return out
