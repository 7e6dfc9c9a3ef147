"""One trial of the real-photo one-shot set (:mod:`trainers.evaluate.real_set`): what goes
into its scene, by category, drawn from its own seed.

:func:`load_library` loads a split's photographs and cuts their products once;
:func:`render_trial` makes trial ``index`` of a category from
``numpy.random.SeedSequence([seed, split number, category number, index])`` alone, so any
trial can be remade without the others (the tests do exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from matcher.errors import InvalidArgumentError
from trainers.evaluate import real_compose as rc
from trainers.evaluate import real_products as rprod
from trainers.evaluate import real_sources as rsrc

#: Trial categories, in the order that numbers them in seeds. ``two_view`` needs the
#: stereo pair, so only the test split has it.
CATEGORIES = (
    "two_view",
    "perspective",
    "relight",
    "blur",
    "jpeg",
    "small",
    "low_texture",
    "several",
    "colour_lookalike",
    "absent",
    "absent_colour_lookalike",
    "absent_shape_lookalike",
)
ABSENT = frozenset({"absent", "absent_colour_lookalike", "absent_shape_lookalike"})
#: Longest side (pixels) of a reference image; larger crops are area-averaged down.
REFERENCE_SIDE = 400
#: Products used for colour look-alikes have at least this mean HSV saturation (0-255).
MIN_SATURATION = 60.0


@dataclass
class Library:
    """What one split's trials are made of.

    Attributes:
        split: the split.
        photos: working-resolution photographs by name (the stereo pair excluded).
        products: every product cut from them (:func:`real_products.photo_products`).
        stereo: ``(left, right, disparity)`` of the stereo pair, when the split has it.
        regions: the stereo pair's object regions (:func:`real_products.stereo_regions`).
    """

    split: str
    photos: dict[str, np.ndarray]
    products: list[rprod.Product]
    stereo: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)

    def categories(self) -> tuple[str, ...]:
        """The categories this split can make."""
        return tuple(c for c in CATEGORIES if c != "two_view" or self.stereo is not None)


def load_library(split: str) -> Library:
    """Load the photographs of ``split`` and cut their products (sources must exist:
    see :func:`real_sources.check_sources`)."""
    photos, products = {}, []
    stereo = None
    regions: list[tuple[int, int, int, int]] = []
    for src in rsrc.sources_of([split]):
        if src.name == rsrc.STEREO:
            stereo = rsrc.load_stereo()
            regions = rprod.stereo_regions(stereo[0], stereo[2])
            continue
        photos[src.name] = rsrc.load_photo(src)
        products += rprod.photo_products(src.name, photos[src.name])
    return Library(split, photos, products, stereo, regions)


@dataclass
class Rendered:
    """A made trial.

    Attributes:
        scene: ``HxWx3`` uint8 RGB.
        plate: the scene without any pasted product (same background, same scene-wide
            degradation), ``HxWx3`` uint8; ``None`` for ``two_view``.
        scene_key: trials with the same key share one scene image (``two_view``), else
            ``None``.
        scene_source: the photograph behind the scene.
        reference: ``hxwx3`` uint8 RGB, the product's face.
        reference_key: trials with the same key share one reference image.
        reference_source: the photograph the reference was cut from.
        present: whether the reference is in the scene.
        boxes: ``(x0, y0, x1, y1)`` float of every true instance.
        masks: ``HxW`` bool of every true instance, or ``None`` (``two_view``).
        distractors: the other pasted things, ``{"kind", "source", "box"}`` each; kinds
            ``"other"``, ``"hue_rotated"`` (a hue-turned copy of the reference),
            ``"colour_original"`` (the product whose hue-turned copy is the reference),
            ``"shape_lookalike"`` (another product of the reference's aspect).
    """

    scene: np.ndarray
    plate: np.ndarray | None
    scene_key: str | None
    scene_source: str
    reference: np.ndarray
    reference_key: str
    reference_source: str
    present: bool
    boxes: list[tuple[float, float, float, float]]
    masks: list[np.ndarray] | None
    distractors: list[dict] = field(default_factory=list)


def trial_rng(seed: int, split: str, category: str, index: int) -> np.random.Generator:
    """The generator of one trial."""
    key = [seed, rsrc.SPLITS.index(split), CATEGORIES.index(category), index]
    return np.random.default_rng(np.random.SeedSequence(key))


def _pick(
    rng: np.random.Generator,
    products: list[rprod.Product],
    *,
    kinds: tuple[str, ...],
    avoid: set[str],
    min_saturation: float = 0.0,
) -> rprod.Product:
    pool = [
        p
        for p in products
        if p.kind in kinds and p.source not in avoid and p.saturation >= min_saturation
    ]
    if not pool:
        raise InvalidArgumentError(
            f"no {'/'.join(kinds)} product outside {sorted(avoid)} (saturation >= {min_saturation})"
        )
    return pool[int(rng.integers(len(pool)))]


def _shape_lookalike(
    rng: np.random.Generator, products: list[rprod.Product], target: rprod.Product, avoid: set[str]
) -> rprod.Product:
    """A product of the same aspect from another photograph, among the 3 closest in mean
    colour (CIELAB)."""
    pool = [
        p
        for p in products
        if p.aspect == target.aspect and p.source not in avoid and p.kind != "small"
    ]
    if not pool:
        return _pick(rng, products, kinds=("textured",), avoid=avoid)
    lab = np.asarray(target.mean_lab)
    dist = [float(np.linalg.norm(np.asarray(p.mean_lab) - lab)) for p in pool]
    nearest = np.argsort(dist, kind="stable")[:3]
    return pool[int(nearest[int(rng.integers(len(nearest)))])]


@dataclass
class SceneItem:
    """A product to paste: its face, longer side (px), most tilt (degrees), what it is in
    the trial (``"truth"`` or a distractor kind) and its photograph."""

    image: np.ndarray
    side: float
    tilt: float
    tag: str
    source: str


def compose_scene(
    rng: np.random.Generator, library: Library, items: list[SceneItem], avoid: set[str]
) -> tuple[np.ndarray, np.ndarray, list[tuple[SceneItem, rc.Pasted]], str]:
    """Background from a photograph not in ``avoid``; every item pasted without overlap.

    Returns:
        The composite and the bare background (float32 ``HxWx3``), the pasted items, and
        the background photograph's name.
    """
    names = sorted(n for n in library.photos if n not in avoid)
    if not names:
        raise InvalidArgumentError(f"no background photograph left in split {library.split}")
    bg_name = names[int(rng.integers(len(names)))]
    canvas = rc.background(library.photos[bg_name], rng)
    plate = canvas.copy()
    taken: list[tuple[float, ...]] = []
    pasted = []
    for item in items:
        side = item.side
        while True:
            face = rc.mild_relight(rc.resize_longer(item.image, side), rng)
            height, width = face.shape[:2]
            quad = rc.pose_quad(width, height, rng, max_tilt=item.tilt, max_roll=20.0)
            spot = rc.place(quad, taken, rng)
            if spot is not None:
                break
            side *= 0.85
        done = rc.paste(canvas, face, spot, rng)
        taken.append(done.box)
        pasted.append((item, done))
    return canvas, plate, pasted, bg_name


def _side(
    rng: np.random.Generator, product: rprod.Product, lo: float = 60.0, hi: float = 220.0
) -> float:
    """A pasted size: ``lo``-``hi`` px longer side, at most 1.5x the crop's own size."""
    native = max(product.image.shape[:2])
    return float(min(rng.uniform(lo, hi), max(lo, 1.5 * native)))


def as_reference(image: np.ndarray) -> np.ndarray:
    """A product face as a reference photo: at most :data:`REFERENCE_SIDE` px long."""
    if max(image.shape[:2]) > REFERENCE_SIDE:
        return rc.resize_longer(image, REFERENCE_SIDE)
    return image


def _others(
    rng: np.random.Generator, library: Library, avoid: set[str], count: int, items: list[SceneItem]
) -> None:
    for _ in range(count):
        other = _pick(rng, library.products, kinds=("textured", "low_texture"), avoid=avoid)
        avoid.add(other.source)
        items.append(SceneItem(other.image, _side(rng, other), 20.0, "other", other.source))


def render_trial(library: Library, category: str, index: int, *, seed: int) -> Rendered:
    """Make trial ``index`` of ``category`` in ``library``'s split.

    Raises:
        InvalidArgumentError: an unknown category, or one the split cannot make.
    """
    if category not in library.categories():
        raise InvalidArgumentError(
            f"split {library.split!r} has no category {category!r}; "
            f"it has {list(library.categories())}"
        )
    rng = trial_rng(seed, library.split, category, index)
    if category == "two_view":
        return _two_view(library, index)
    products = library.products
    items: list[SceneItem] = []
    reference_image: np.ndarray
    if category in ("colour_lookalike", "absent_colour_lookalike"):
        target = _pick(
            rng, products, kinds=("textured",), avoid=set(), min_saturation=MIN_SATURATION
        )
    elif category == "low_texture":
        target = _pick(rng, products, kinds=("low_texture",), avoid=set())
    elif category == "small":
        target = _pick(rng, products, kinds=("textured", "small"), avoid=set())
    elif category == "absent":
        target = _pick(rng, products, kinds=("textured", "low_texture"), avoid=set())
    else:
        target = _pick(rng, products, kinds=("textured",), avoid=set())
    avoid = {target.source}
    reference_image = target.image
    reference_key = target.key
    mild = 15.0
    if category in ("perspective", "low_texture"):
        items.append(SceneItem(target.image, _side(rng, target), 35.0, "truth", target.source))
    elif category in ("relight", "blur", "jpeg"):
        items.append(SceneItem(target.image, _side(rng, target), mild, "truth", target.source))
    elif category == "small":
        side = rng.uniform(24.0, 48.0)
        items.append(SceneItem(target.image, side, mild, "truth", target.source))
    elif category == "several":
        for _ in range(int(rng.integers(2, 5))):
            side = _side(rng, target, 60.0, 160.0)
            items.append(SceneItem(target.image, side, 25.0, "truth", target.source))
    elif category == "colour_lookalike":
        turned = rc.hue_rotate(target.image, rc.lookalike_turn(rng))
        items.append(SceneItem(target.image, _side(rng, target), mild, "truth", target.source))
        items.append(SceneItem(turned, _side(rng, target), mild, "hue_rotated", target.source))
    elif category == "absent_colour_lookalike":
        turn = rc.lookalike_turn(rng)
        reference_image = rc.hue_rotate(target.image, turn)
        reference_key = f"{target.key}@hue{round(turn / 2.0) * 2:+d}"
        items.append(
            SceneItem(target.image, _side(rng, target), mild, "colour_original", target.source)
        )
    elif category == "absent_shape_lookalike":
        twin = _shape_lookalike(rng, products, target, avoid)
        avoid.add(twin.source)
        items.append(SceneItem(twin.image, _side(rng, twin), mild, "shape_lookalike", twin.source))
    # "absent": nothing of the reference goes in
    extra = {"several": (0, 1), "absent": (1, 3)}.get(category, (0, 2))
    _others(rng, library, avoid, int(rng.integers(extra[0], extra[1] + 1)), items)
    canvas, plate, pasted, bg_name = compose_scene(rng, library, items, avoid)
    scene, plate = _degrade(rng, category, canvas, plate)
    truth = [done for item, done in pasted if item.tag == "truth"]
    distractors = [
        {"kind": item.tag, "source": item.source, "box": [round(v, 2) for v in done.box]}
        for item, done in pasted
        if item.tag != "truth"
    ]
    return Rendered(
        scene=scene,
        plate=plate,
        scene_key=None,
        scene_source=bg_name,
        reference=as_reference(reference_image),
        reference_key=reference_key,
        reference_source=target.source,
        present=category not in ABSENT,
        boxes=[done.box for done in truth],
        masks=[done.mask for done in truth],
        distractors=distractors,
    )


def _degrade(
    rng: np.random.Generator, category: str, canvas: np.ndarray, plate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The category's scene-wide degradation, on the composite and the plate alike."""
    if category == "relight":
        light = rc.draw_relight(rng)
        canvas, plate = rc.apply_relight(canvas, light), rc.apply_relight(plate, light)
    elif category == "blur":
        blur = rc.draw_blur(rng)
        canvas, plate = rc.apply_blur(canvas, blur), rc.apply_blur(plate, blur)
    scene, plate_u8 = rc.to_uint8(canvas), rc.to_uint8(plate)
    if category == "jpeg":
        quality = int(rng.integers(10, 26))
        scene, plate_u8 = rc.jpeg(scene, quality), rc.jpeg(plate_u8, quality)
    return scene, plate_u8


def _two_view(library: Library, index: int) -> Rendered:
    """Region ``index`` of the left view against the whole right view."""
    assert library.stereo is not None
    if index >= len(library.regions):
        raise InvalidArgumentError(
            f"two_view has {len(library.regions)} distinct regions; trial {index} asked"
        )
    left, right, disparity = library.stereo
    region = library.regions[index]
    x0, y0, x1, y1 = region
    return Rendered(
        scene=right,
        plate=None,
        scene_key=f"{rsrc.STEREO}/right",
        scene_source=rsrc.STEREO,
        reference=np.ascontiguousarray(left[y0:y1, x0:x1]),
        reference_key=f"{rsrc.STEREO}/left/{x0},{y0},{x1},{y1}",
        reference_source=rsrc.STEREO,
        present=True,
        boxes=[rprod.stereo_truth_box(region, disparity)],
        masks=None,
    )
