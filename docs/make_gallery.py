"""Build the README gallery: a matcher at work on real photos.

The photos are those scikit-image ships (``skimage.data``). For each case a crop of one
photo is the product (the reference) and a scene is made from another photo: the product
is pasted after a perspective warp and relighting (a gain gradient, a colour cast, sometimes
a blur), sometimes twice, and sometimes beside a *lookalike* (the same crop with its hues
turned, the "other flavour" of a product line). The matcher's instances are drawn with
:func:`api.render.draw_instances` (boxes, masks, polygons, scores) and the true outlines as
thin white lines; each case becomes ``OUT/<case>.png`` (reference beside the annotated
scene) and all of them ``OUT/strip.png``; ``OUT/shelves.png`` adds three scenes of the
synthetic generator with products no model was trained on (the shipped models' domain).

Usage (from the repository root)::

    python docs/make_gallery.py                                  # the CLI's default recipe
    python docs/make_gallery.py --recipe baseline_sift --out var/gallery-sift
    python docs/make_gallery.py --recipe siamrpnpp_r50 --weights model.pth
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from api.defaults import DEFAULT_RECIPE  # noqa: E402
from api.render import draw_instances  # noqa: E402

logger = logging.getLogger("make_gallery")

SCENE_HW = (420, 640)
#: Seed of the synthetic shelves (no recipe trains or validates on it).
SHELF_SEED = 31337
PANEL_GAP = 8
HEADER = 30


@dataclass(frozen=True)
class Case:
    """One gallery scene: the product, the scene and where the product truly is.

    Attributes:
        name: file stem.
        title: caption.
        product: ``(h, w, 3)`` uint8 RGB reference photo.
        scene: ``(H, W, 3)`` uint8 RGB scene.
        truth: outline quadrilaterals ``(4, 2)`` of every true instance, scene pixels.
    """

    name: str
    title: str
    product: np.ndarray
    scene: np.ndarray
    truth: tuple[np.ndarray, ...]


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as ``HxWx3`` uint8 RGB."""
    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[:, :, :3])


def background(name: str, hw: tuple[int, int] = SCENE_HW) -> np.ndarray:
    """A photo resized and centre-cropped to fill ``hw``."""
    img = photo(name)
    h, w = hw
    scale = max(h / img.shape[0], w / img.shape[1])
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


def turn_hues(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The image with every hue turned by ``degrees`` (a lookalike of another colour)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + round(degrees / 2)) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def quad_at(
    rng: np.random.Generator,
    *,
    centre: tuple[float, float],
    size: tuple[float, float],
    angle: float,
    jitter: float,
) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a rotated ``size`` box at ``centre``, each corner moved
    by up to ``jitter`` of the box size (perspective)."""
    w, h = size
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rad = np.deg2rad(angle)
    rot = np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
    corners = base @ rot.T + np.asarray(centre)
    return corners + rng.uniform(-jitter, jitter, (4, 2)) * np.array([w, h])


def paste_warped(
    scene: np.ndarray,
    product: np.ndarray,
    quad: np.ndarray,
    *,
    gain: tuple[float, float] = (1.0, 1.0),
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0),
    blur: float = 0.0,
) -> np.ndarray:
    """Paste ``product`` into a copy of ``scene`` with its corners on ``quad``, relit.

    Args:
        scene: ``(H, W, 3)`` uint8.
        product: ``(h, w, 3)`` uint8.
        quad: ``(4, 2)`` target corners TL, TR, BR, BL.
        gain: brightness at the product's left and right edge (a lighting gradient).
        cast: per-channel colour gain.
        blur: Gaussian sigma applied to the pasted product (defocus), pixels.
    """
    h, w = product.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    homography = cv2.getPerspectiveTransform(src, np.float32(quad))
    ramp = np.linspace(gain[0], gain[1], w, dtype=np.float32)[None, :, None]
    lit = product.astype(np.float32) * ramp * np.float32(cast)
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(lit, homography, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(np.ones((h, w), np.float32), homography, size)
    if blur > 0:
        warped = cv2.GaussianBlur(warped, (0, 0), blur)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(blur / 2, 0.5))
    a = np.clip(alpha, 0, 1)[..., None]
    out = scene.astype(np.float32) * (1 - a) + warped * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# -- the cases --------------------------------------------------------------------------


def case_perspective(rng: np.random.Generator) -> Case:
    product = photo("astronaut")[30:230, 170:370]
    scene = background("coffee")
    truth = quad_at(rng, centre=(190, 210), size=(170, 170), angle=-6, jitter=0.08)
    lookalike = quad_at(rng, centre=(470, 200), size=(160, 160), angle=4, jitter=0.06)
    scene = paste_warped(scene, turn_hues(product, 140), lookalike, gain=(1.0, 0.85))
    scene = paste_warped(scene, product, truth, gain=(1.15, 0.7), cast=(1.0, 0.95, 0.85))
    return Case(
        "perspective",
        "perspective + relighting, lookalike on the right",
        product,
        scene,
        (truth,),
    )


def case_two_facings(rng: np.random.Generator) -> Case:
    product = photo("rocket")[40:330, 250:390]
    scene = background("chelsea")
    quads = (
        quad_at(rng, centre=(150, 220), size=(105, 218), angle=2, jitter=0.04),
        quad_at(rng, centre=(470, 250), size=(80, 166), angle=-3, jitter=0.04),
    )
    for quad, gain in zip(quads, [(0.9, 1.1), (0.75, 0.9)], strict=True):
        scene = paste_warped(scene, product, quad, gain=gain)
    return Case("two_facings", "two copies at two scales", product, scene, quads)


def case_dim_and_blurred(rng: np.random.Generator) -> Case:
    product = photo("chelsea")[20:250, 110:330]
    scene = background("brick")
    truth = quad_at(rng, centre=(330, 200), size=(190, 200), angle=9, jitter=0.05)
    scene = paste_warped(scene, product, truth, gain=(0.6, 0.8), cast=(0.9, 0.95, 1.1), blur=1.2)
    return Case("dim_blurred", "rotated, dimmed, defocused", product, scene, (truth,))


def case_small(rng: np.random.Generator) -> Case:
    product = photo("coffee")[20:300, 120:440]
    scene = background("astronaut")
    truth = quad_at(rng, centre=(500, 310), size=(112, 98), angle=-4, jitter=0.05)
    lookalike = quad_at(rng, centre=(120, 330), size=(100, 88), angle=3, jitter=0.05)
    scene = paste_warped(scene, turn_hues(product, 200), lookalike)
    scene = paste_warped(scene, product, truth, gain=(1.05, 0.9))
    return Case("small", "small product, lookalike on the left", product, scene, (truth,))


def shelf_cases(root: Path, seed: int, count: int = 3) -> list[Case]:
    """Scenes of the synthetic generator at a seed no recipe trains on (products the shipped
    models never saw; the generator's backgrounds are scikit-image photos): in each scene the
    most visible product, its catalog photo as the reference, all its instances as truth."""
    import json

    from trainers.data.synth import generate

    data = Path(generate(root, num_products=12, num_scenes=count, seed=seed, workers=1))
    document = json.loads((data / "annotations.json").read_text())
    products = {p["id"]: p for p in document["products"]}
    cases = []
    for image in sorted(document["images"], key=lambda im: im["id"]):
        anns = [
            a
            for a in document["annotations"]
            if a["image_id"] == image["id"] and not a.get("iscrowd", 0)
        ]
        pid = max(anns, key=lambda a: a["area"])["category_id"]
        truth = tuple(
            np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
            for x, y, w, h in (a["bbox"] for a in anns if a["category_id"] == pid)
        )
        scene = cv2.cvtColor(
            cv2.imread(str(data / "images" / image["file_name"])), cv2.COLOR_BGR2RGB
        )
        product = cv2.cvtColor(cv2.imread(str(data / products[pid]["catalog"])), cv2.COLOR_BGR2RGB)
        title = f"unseen product on a synthetic {image.get('layout', 'scene')}"
        cases.append(Case(f"shelf_{image['id']}", title, product, scene, truth))
    return cases


CASES: tuple[Callable[[np.random.Generator], Case], ...] = (
    case_perspective,
    case_two_facings,
    case_dim_and_blurred,
    case_small,
)


# -- drawing ----------------------------------------------------------------------------


def quad_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def header(width: int, text: str) -> np.ndarray:
    band = np.full((HEADER, width, 3), 32, np.uint8)
    cv2.putText(
        band, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (240, 240, 240), 1, cv2.LINE_AA
    )
    return band


def beside(reference: np.ndarray, scene: np.ndarray, caption: str, ref_width: int = 200):
    """The reference (left, at most ``ref_width`` wide) beside the annotated ``scene``,
    under a caption band."""
    h = scene.shape[0]
    scale = min(h / reference.shape[0], ref_width / reference.shape[1])
    size = (max(1, round(reference.shape[1] * scale)), max(1, round(reference.shape[0] * scale)))
    ref = cv2.resize(reference, size, interpolation=cv2.INTER_AREA)
    left = np.full((h, ref.shape[1] + PANEL_GAP, 3), 255, np.uint8)
    left[: ref.shape[0], : ref.shape[1]] = ref
    body = np.concatenate([left, scene], axis=1)
    return np.concatenate([header(body.shape[1], caption), body])


def panel(case: Case, result, recipe: str) -> np.ndarray:
    """Reference (left) beside the annotated scene (right), under a caption."""
    scene = draw_instances(case.scene, result.instances)
    for quad in case.truth:
        pts = np.round(quad).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(scene, [pts], True, (255, 255, 255), 1, cv2.LINE_AA)
    best = result.best
    if best is None:
        verdict = "nothing found"
    else:
        iou = max(box_iou(best.box, quad_box(q)) for q in case.truth)
        verdict = f"{len(result.instances)} found, best {best.score:.2f} (IoU {iou:.2f})"
    return beside(case.product, scene, f"{case.title} | {recipe}: {verdict}")


def strip(panels: list[np.ndarray], height: int = 300) -> np.ndarray:
    """Panels scaled to one height, side by side with white gaps."""
    parts = []
    for p in panels:
        scale = height / p.shape[0]
        parts.append(cv2.resize(p, (round(p.shape[1] * scale), height), cv2.INTER_AREA))
        parts.append(np.full((height, PANEL_GAP, 3), 255, np.uint8))
    return np.concatenate(parts[:-1], axis=1)


def save(path: Path, rgb: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Write an RGB image in the format of ``path``'s suffix (``params``: OpenCV's
    encoder flags, e.g. a JPEG quality)."""
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def matcher_arguments(parser: argparse.ArgumentParser) -> None:
    """``--recipe``, ``--weights``, ``--device`` and ``--set``, read by :func:`load_matcher`."""
    parser.add_argument("--recipe", help=f"recipe or baseline name (default {DEFAULT_RECIPE})")
    parser.add_argument("--weights", help="weights file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def load_matcher(args: argparse.Namespace):
    """The matcher :func:`matcher_arguments` describe (the CLI's default recipe unless a
    recipe or weights file is given)."""
    import matcher

    recipe = args.recipe or (None if args.weights else DEFAULT_RECIPE)
    return matcher.load(recipe, args.weights, device=args.device, overrides=args.overrides or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    matcher_arguments(parser)
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene geometry")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import matcher

    m = load_matcher(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    panels = []
    for make in CASES:
        case = make(rng)
        reference = matcher.Reference.from_image(case.product, id=case.name)
        result = m.match(reference, case.scene, max_instances=5)
        panels.append(panel(case, result, m.name))
        save(out / f"{case.name}.png", panels[-1])
        logger.info("%s: %d instance(s)", case.name, len(result.instances))
    save(out / "strip.png", strip(panels))
    with tempfile.TemporaryDirectory() as tmp:
        shelves = []
        for case in shelf_cases(Path(tmp) / "synth", seed=SHELF_SEED):
            reference = matcher.Reference.from_image(case.product, id=case.name)
            result = m.match(reference, case.scene, max_instances=5)
            shelves.append(panel(case, result, m.name))
            logger.info("%s: %d instance(s)", case.name, len(result.instances))
    save(out / "shelves.png", strip(shelves))
    logger.info("gallery written to %s/", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
