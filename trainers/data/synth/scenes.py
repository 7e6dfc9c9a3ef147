"""Scene composition: products, lookalikes, clutter and a camera, in three layouts.

- **shelf**: rows of products standing on store shelves, several facings of the same
  product side by side, lookalikes next to each other (as flavours are shelved), and
  foreign brands in between; small rotation and perspective.
- **table**: a flat lay on a table or floor seen from above: any rotation, larger scale
  range, products overlapping each other, clutter around them.
- **photo**: one to three large products in front of a real photo (scikit-image's
  sample photos), with stronger perspective.

Then occluders may cover parts of the annotated products, the lighting, blur and sensor
noise of :mod:`trainers.data.synth.photometric` are applied, and each catalog instance's
*visible* mask is read from the canvas's label map. :func:`compose_scene` is a pure
function of its generator, the bank's specs, the size and the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainers.data.synth.backgrounds import (
    Background,
    photo_background,
    shelf_background,
    surface_background,
)
from trainers.data.synth.bank import ProductBank
from trainers.data.synth.clutter import clutter_item
from trainers.data.synth.compositing import Canvas, product_quad
from trainers.data.synth.photometric import blur, relight, sensor_noise

LAYOUTS = ("shelf", "table", "photo")
_MIN_PRODUCT_HEIGHT = 12  # pixels; shelf levels that cannot hold this stay empty


@dataclass(frozen=True)
class SceneSettings:
    """How scenes are composed. Probabilities are per scene unless stated otherwise.

    Attributes:
        layout_weights: relative frequency of the ``shelf``, ``table`` and ``photo`` layouts.
        table_objects: ``(min, max)`` products in a table scene.
        photo_objects: ``(min, max)`` products in a photo scene.
        p_lookalike: per placed catalog product, chance that one of its lookalikes is
            placed in the same scene (next to it on a shelf).
        p_negative: chance that a scene holds no catalog product at all (only foreign
            products and clutter): pure false-positive material.
        foreign_share: chance that a placed product is a foreign (non-catalog) one.
        p_occluders: chance that 1-3 clutter items are dropped over annotated products.
        min_visible: instances with a smaller visible fraction of their silhouette are
            written as COCO ``iscrowd=1`` (ignore) regions.
        perspective: corner jitter of a product's quad, fraction of its size (table layout;
            shelves use a quarter of it, photos 1.5 times it).
        p_defocus: chance of a Gaussian blur.
        p_motion: chance of a motion blur.
        noise_sigma: ``(min, max)`` luminance noise standard deviation, 8-bit levels.
        jpeg_quality: ``(min, max)`` JPEG quality the scene is written with.
    """

    layout_weights: tuple[float, float, float] = (0.4, 0.4, 0.2)
    table_objects: tuple[int, int] = (3, 7)
    photo_objects: tuple[int, int] = (1, 3)
    p_lookalike: float = 0.5
    p_negative: float = 0.08
    foreign_share: float = 0.35
    p_occluders: float = 0.6
    min_visible: float = 0.25
    perspective: float = 0.08
    p_defocus: float = 0.25
    p_motion: float = 0.12
    noise_sigma: tuple[float, float] = (0.0, 5.0)
    jpeg_quality: tuple[int, int] = (60, 95)


@dataclass(frozen=True)
class SceneInstance:
    """One visible catalog product in a scene.

    Attributes:
        product_id: catalog id (COCO category id).
        mask: ``(H, W)`` bool, the visible pixels (after occlusion and truncation).
        visible_fraction: visible pixels over the pixels of the whole silhouette.
    """

    product_id: int
    mask: np.ndarray
    visible_fraction: float


@dataclass(frozen=True)
class Scene:
    """A composed scene.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB (before JPEG compression).
        instances: visible catalog products in drawing order; foreign ones are not listed.
        layout: one of :data:`LAYOUTS`.
        background: what the background shows, e.g. ``"shelf"`` or ``"photo:coffee"``.
        jpeg_quality: quality to write the image with.
    """

    image: np.ndarray
    instances: tuple[SceneInstance, ...]
    layout: str
    background: str
    jpeg_quality: int


class _Picker:
    """Draws the products of a scene: catalog ones with their lookalikes, and foreign ones."""

    def __init__(self, rng: np.random.Generator, bank: ProductBank, settings: SceneSettings):
        self.rng, self.bank, self.settings = rng, bank, settings
        self.negative = bool(rng.random() < settings.p_negative) or not bank.catalog_ids

    def group(self) -> list[int]:
        """One product, or a catalog product followed by one of its lookalikes."""
        rng, bank = self.rng, self.bank
        if self.negative or rng.random() < self.settings.foreign_share:
            return [int(rng.choice(bank.foreign_ids))]
        pid = int(rng.choice(bank.catalog_ids))
        lookalikes = bank.spec(pid).lookalikes
        if lookalikes and rng.random() < self.settings.p_lookalike:
            return [pid, int(rng.choice(lookalikes))]
        return [pid]


def compose_scene(
    rng: np.random.Generator,
    bank: ProductBank,
    *,
    image_size: tuple[int, int],
    settings: SceneSettings | None = None,
) -> Scene:
    """Compose one scene in memory.

    Args:
        rng: the scene's generator (consumed); the scene is a function of it.
        bank: specs and renderings of the catalog and foreign products.
        image_size: ``(H, W)`` pixels.
        settings: composition settings (defaults: :class:`SceneSettings`).

    Returns:
        The scene with the visible mask of every catalog instance.
    """
    settings = settings or SceneSettings()
    H, W = image_size
    weights = np.asarray(settings.layout_weights, np.float64)
    layout = str(rng.choice(LAYOUTS, p=weights / weights.sum()))
    picker = _Picker(rng, bank, settings)
    if layout == "shelf":
        background = shelf_background(rng, H, W)
        canvas = Canvas(background.image)
        _shelf(rng, canvas, bank, picker, background, settings)
    else:
        background = (surface_background if layout == "table" else photo_background)(rng, H, W)
        canvas = Canvas(background.image)
        _background_clutter(rng, canvas)
        _loose(rng, canvas, bank, picker, settings, photo=layout == "photo")
    if canvas.product_ids and rng.random() < settings.p_occluders:
        _occluders(rng, canvas)
    image = relight(canvas.image, rng)
    image = blur(image, rng, p_defocus=settings.p_defocus, p_motion=settings.p_motion)
    image = sensor_noise(image, rng, sigma=float(rng.uniform(*settings.noise_sigma)))
    quality = int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1))
    instances = tuple(
        SceneInstance(pid, mask, min(1.0, area / full))
        for pid, mask, area, full in canvas.visible_masks()
    )
    return Scene(
        image=np.clip(image + 0.5, 0, 255).astype(np.uint8),
        instances=instances,
        layout=layout,
        background=background.kind,
        jpeg_quality=quality,
    )


def _light(rng: np.random.Generator) -> np.ndarray:
    return (rng.uniform(0.85, 1.15) * (1 + rng.normal(0, 0.03, 3))).astype(np.float32)


def _glare(rng: np.random.Generator) -> tuple[float, float, float] | None:
    if rng.random() < 0.12:
        return (
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(40, 110)),
        )
    return None


def _shelf(
    rng: np.random.Generator,
    canvas: Canvas,
    bank: ProductBank,
    picker: _Picker,
    background: Background,
    settings: SceneSettings,
) -> None:
    _, W = canvas.size
    for space_top, surface in background.shelves:
        gap = surface - space_top
        base = gap * rng.uniform(0.8, 0.93)
        x = rng.uniform(-0.4, 0.05) * base * 0.5
        if base < _MIN_PRODUCT_HEIGHT / 0.5:  # even the smallest packs would be specks
            continue
        while x < W:
            if rng.random() < 0.06:  # an empty slot
                x += rng.uniform(0.2, 0.6) * base
                continue
            for pid in picker.group():
                product = bank.get(pid)
                height = base * product.spec.shelf_height
                width = height * product.aspect
                for _ in range(int(rng.integers(1, 4))):
                    if x >= W:
                        break
                    quad = product_quad(
                        rng,
                        anchor=(x + width / 2, surface - rng.uniform(0, 0.02) * gap),
                        height=height,
                        aspect=product.aspect,
                        angle=float(rng.normal(0, 1.2)),
                        perspective=settings.perspective / 4,
                        bottom=True,
                    )
                    canvas.place_product(
                        product,
                        quad,
                        annotate=pid > 0,
                        gain=_light(rng),
                        shadow=0.35,
                        shadow_offset=(0.03 * width, -0.01 * height),
                        glare=_glare(rng),
                    )
                    x += width + rng.uniform(0.01, 0.06) * base


def _loose(
    rng: np.random.Generator,
    canvas: Canvas,
    bank: ProductBank,
    picker: _Picker,
    settings: SceneSettings,
    *,
    photo: bool,
) -> None:
    """Table (flat lay) or photo layout: products at free positions, few overlaps."""
    H, W = canvas.size
    lo, hi = settings.photo_objects if photo else settings.table_objects
    count = int(rng.integers(lo, hi + 1))
    pids: list[int] = []
    while len(pids) < count:
        group = picker.group()
        if not photo and rng.random() < 0.15:
            group = group + group[:1]  # a second instance of the same product
        pids.extend(group)
    placed: list[tuple[float, float, float, float]] = []
    unit = min(H, W)
    for pid in pids:
        product = bank.get(pid)
        if photo:
            height = unit * rng.uniform(0.3, 0.62)
            angle = float(rng.normal(0, 12))
            perspective = settings.perspective * 1.5
        else:
            height = unit * rng.uniform(0.2, 0.45) * (0.7 + 0.3 * product.spec.shelf_height)
            angle = float(rng.uniform(-180, 180) if rng.random() < 0.5 else rng.normal(0, 15))
            perspective = settings.perspective
        half = 0.5 * height * max(1.0, product.aspect)
        best, best_overlap = None, 2.0
        for _ in range(12):
            cx = rng.uniform(0.1 * W, 0.9 * W)
            cy = rng.uniform(0.1 * H, 0.9 * H)
            box = (cx - half, cy - half, cx + half, cy + half)
            overlap = max((_covered(b, box) for b in placed), default=0.0)
            if overlap < best_overlap:
                best, best_overlap = (cx, cy), overlap
            if overlap < 0.3:
                break
        assert best is not None
        quad = product_quad(
            rng,
            anchor=best,
            height=height,
            aspect=product.aspect,
            angle=angle,
            perspective=perspective,
        )
        box = canvas.place_product(
            product,
            quad,
            annotate=pid > 0,
            gain=_light(rng),
            shadow=0.3 if photo else 0.45,
            shadow_offset=(0.04 * height, 0.06 * height),
            glare=_glare(rng),
        )
        if box is not None:
            placed.append(tuple(float(v) for v in box))  # type: ignore[arg-type]


def _covered(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Fraction of box ``a`` that box ``b`` covers."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max((a[2] - a[0]) * (a[3] - a[1]), 1e-6)
    return ix * iy / area


def _background_clutter(rng: np.random.Generator, canvas: Canvas) -> None:
    H, W = canvas.size
    for _ in range(int(rng.integers(0, 5))):
        size = int(min(H, W) * rng.uniform(0.1, 0.35))
        rgb, alpha = clutter_item(rng, size)
        left, top = (
            int(rng.integers(-size // 3, W - size // 2)),
            int(rng.integers(-size // 3, H - size // 2)),
        )
        canvas.place_item(rgb, alpha, left=left, top=top, occlude=False, shadow=0.3)


def _occluders(rng: np.random.Generator, canvas: Canvas) -> None:
    """Drop 1-3 clutter items over the edges of annotated products."""
    for _ in range(int(rng.integers(1, 4))):
        x0, y0, x1, y1 = canvas.boxes[int(rng.integers(len(canvas.boxes)))]
        bw, bh = x1 - x0, y1 - y0
        size = max(10, int(max(bw, bh) * rng.uniform(0.3, 0.7)))
        side = int(rng.integers(4))
        along_x, along_y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        cx, cy = [
            (x0 + rng.uniform(-0.15, 0.15) * bw, along_y),
            (x1 + rng.uniform(-0.15, 0.15) * bw, along_y),
            (along_x, y0 + rng.uniform(-0.15, 0.15) * bh),
            (along_x, y1 + rng.uniform(-0.15, 0.15) * bh),
        ][side]
        rgb, alpha = clutter_item(rng, size)
        canvas.place_item(
            rgb, alpha, left=int(cx - size / 2), top=int(cy - size / 2), occlude=True, shadow=0.35
        )
