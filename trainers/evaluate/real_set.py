"""The real-photo one-shot set: (reference photo, scene photo) trials with ground truth,
built deterministically from photographs available offline, split by source photograph.

**Sources.** Only these photographs are read (table: :data:`real_sources.SOURCES`):

- scikit-image's bundled sample photographs (``skimage/data``, shipped in the wheel):
  astronaut (public domain, NASA), coffee (CC0, Rachel Michetti), camera (CC0, Lav
  Varshney), grass, brick, gravel (CC0, CC0Textures), coins (no known copyright
  restrictions, Brooklyn Museum), ihc (no known restrictions, CMMI), chelsea (CC0, Stefan
  van der Walt), moon and page (no known restrictions), retina (CC0, Mikael Häggström),
  rocket (public domain, SpaceX), hubble_deep_field (public domain, NASA), clock_motion
  (public domain, Stefan van der Walt), and the Middlebury 2014 motorcycle stereo pair
  with its ground-truth disparity (Scharstein et al., GCPR 2014; shipped down-sampled by
  scikit-image). The drawn images beside them (color wheel, logo, phantom, chessboard,
  text) are not photographs and are not used.
- the Debian package ``mate-backgrounds`` (GPL-2+), ``/usr/share/backgrounds/mate/nature/``:
  Aqua, Garden, LadyBird, YellowFlower, TwoWings (Charles Barbin), Blinds (Lennart
  Poettering, Andrea Cimitan), Dune (Marco Cogoni), FreshFlower (Jens Ansorg), GreenMeadow
  (Timothy Schellhase), RainDrops (blackcombwhistler07), Storm (Sergey Nazarov), Wood
  (Jean-François Fortin Tam). Its abstract and desktop images (Elephants, GreenTraditional,
  ...) are artwork, not photographs, and are not used. Install it with ``make system-deps``.
- OpenCV's, scikit-learn's and matplotlib's sample images are reserved for evaluation
  outside this project and are never read.

A missing package or file stops the build before any work with
:class:`~matcher.errors.InvalidArgumentError` naming it; the set is never built smaller.

**Splits.** Every photograph belongs to exactly one split (11 train, 7 val, 10 test, the
stereo pair in test; see the table). A trial's reference, background and every other
pasted product come from its split's photographs, and from different photographs: the
reference's photograph never also serves as the background or as another product.

**Products** are rectangular crops of the photographs (a printed pack face, a poster),
cut deterministically from each photograph at a 1024 px working resolution: the most
textured windows (mean Sobel gradient), low-texture windows (smooth but not flat, where
keypoint matchers fail), and small detail windows. A reference is the product's crop as
its own image (longer side at most 400 px; ``box`` null = the whole image).

**Scenes** are 640x480 windows of a photograph with products pasted by a random plane
pose (in-plane turn up to 20 degrees, tilt up to 15 degrees unless stated), a mild
relighting, a soft edge and a soft drop shadow, longer side 60-220 px (never more than
1.5x the crop), fully inside the scene and never overlapping. Categories:

============================ ============================================================
``two_view``                 (test only) reference = a region of the stereo pair's left
                             view; scene = the right view at its own size (741x500); the
                             truth box is the box of the region's pixels moved by their
                             ground-truth disparity; no mask
``perspective``              tilt up to 35 degrees
``relight``                  scene-wide strong change: gain x0.45-0.7 or x1.3-1.7,
                             contrast x0.55-1.5, colour temperature +-12-30 %, shadow
                             gradient down to 35-65 %
``blur``                     motion (7-17 px) or Gaussian (sigma 1.2-2.8) blur, then
                             down- and upscaling by 2-3.5
``jpeg``                     the whole scene JPEG-compressed at quality 10-25
``small``                    the product at 24-48 px longer side
``low_texture``              a low-texture product, tilt up to 35 degrees
``several``                  2-4 instances of the product (60-160 px), all true
``colour_lookalike``         the product and a hue-turned (70-150 degrees) copy; only the
                             original is true
``absent``                   the product is not in the scene (1-3 other products are)
``absent_colour_lookalike``  the reference is a hue-turned copy; the scene holds only
                             the original product
``absent_shape_lookalike``   the scene holds another product of the reference's aspect
                             and similar mean colour, not the reference
============================ ============================================================

Present categories other than ``several`` add 0-2 other products, ``several`` 0-1.

**Determinism.** Trial ``i`` of a category draws everything from
``numpy.random.SeedSequence([seed, split number, category number, i])`` (numbers: positions
in :data:`real_sources.SPLITS` and :data:`real_trials.CATEGORIES`), so building twice gives
byte-identical files. Scenes are PNG; ``jpeg`` scenes hold the decoded JPEG pixels.

**Layout** (``ROOT``)::

    annotations.json    {"info": {"name": "siammatch-real", "version", "seed", "counts",
                                  "scene_size", "sources": {name: {"path", "split",
                                  "licence", "package", "sha256"}}, "categories"},
                         "images":     [{"id", "file_name", "height", "width", "split",
                                         "source"}],
                         "references": [{"id", "file_name", "box", "height", "width",
                                         "split", "source"}],
                         "trials":     [{"id", "image_id", "reference_id", "present",
                                         "category", "split", "boxes", "masks",
                                         "distractors"}]}
    scenes/000001.png ...
    references/000001.png ...

Boxes are ``[x0, y0, x1, y1]`` float pixel edges; ``masks`` are COCO RLE (``counts`` a str)
parallel to ``boxes``, ``null`` for ``two_view``; absent trials have no boxes and no masks.
``distractors`` lists the other pasted things (``kind``: ``other``, ``hue_rotated``,
``colour_original``, ``shape_lookalike``; ``source``; ``box``) for error analysis. A source's
``path`` is relative to its package's folder. :mod:`trainers.evaluate.real_reader` reads a
built set back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from matcher.errors import InvalidArgumentError
from matcher.mask_codec import encode_rle
from trainers.evaluate import real_compose, real_sources, real_trials

logger = logging.getLogger(__name__)

NAME = "siammatch-real"
VERSION = 1
ANNOTATIONS = "annotations.json"
#: Trials per category and split of the default build (test: 12 categories x 16 = 192).
DEFAULT_TRIALS: dict[str, int] = {"train": 32, "val": 12, "test": 16}
MAX_TRIALS = 10_000
#: PNG encoder flags of the set's scenes and references.
PNG = (cv2.IMWRITE_PNG_COMPRESSION, 4)


def _counts(
    splits: Iterable[str], trials_per_category: int | Mapping[str, int]
) -> dict[str, dict[str, int]]:
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    if not splits or len(set(splits)) != len(splits):
        raise InvalidArgumentError(f"splits must be distinct names, got {splits!r}")
    unknown = [s for s in splits if s not in real_sources.SPLITS]
    if unknown:
        raise InvalidArgumentError(f"unknown splits {unknown}; use {real_sources.SPLITS}")
    counts = {}
    for split in (s for s in real_sources.SPLITS if s in splits):
        if isinstance(trials_per_category, Mapping):
            if split not in trials_per_category:
                raise InvalidArgumentError(f"trials_per_category has no count for {split!r}")
            n = trials_per_category[split]
        else:
            n = trials_per_category
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TRIALS:
            raise InvalidArgumentError(
                f"trials_per_category must be an integer in 1..{MAX_TRIALS}, got {n!r}"
            )
        has_stereo = any(s.name == real_sources.STEREO for s in real_sources.sources_of([split]))
        cats = [c for c in real_trials.CATEGORIES if c != "two_view" or has_stereo]
        counts[split] = dict.fromkeys(cats, n)
    return counts


def _info(seed: int, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    described = real_sources.check_sources(counts)
    sources = {
        name: {
            "path": f"{d['package']}/{real_sources.source(name).relpath}",
            "split": d["split"],
            "licence": d["licence"],
            "package": d["package"],
            "sha256": d["sha256"],
        }
        for name, d in described.items()
    }
    categories = [c for c in real_trials.CATEGORIES if any(c in cs for cs in counts.values())]
    return {
        "name": NAME,
        "version": VERSION,
        "seed": seed,
        "counts": counts,
        "scene_size": list(real_compose.SCENE_HW),
        "sources": sources,
        "categories": categories,
    }


def build_real_set(
    root: str | os.PathLike[str],
    *,
    seed: int = 2026,
    splits: Iterable[str] = real_sources.SPLITS,
    trials_per_category: int | Mapping[str, int] = DEFAULT_TRIALS,
    progress: bool = False,
) -> Path:
    """Build the real-photo set into ``root`` (see the module docstring for the protocol).

    The set is built in a temporary folder beside ``root`` and renamed into place at the
    end, so ``root`` holds either the previous set, nothing, or the complete new set. A set
    already at ``root`` with the same ``info`` (seed, version, counts, sources) is kept as
    it is.

    Args:
        root: output folder: absent, empty, or holding a set built by this function.
        seed: the set's seed, ``>= 0``.
        splits: which of ``"train"``, ``"val"``, ``"test"`` to build (one name or several).
        trials_per_category: trials per category, one integer for every split or
            ``{split: count}``; default :data:`DEFAULT_TRIALS` (test: 16 per category,
            192 trials).
        progress: show a tqdm progress bar (stderr).

    Returns:
        ``root / "annotations.json"``.

    Raises:
        InvalidArgumentError: a bad argument, a missing source photograph (package and
            files named), or ``root`` is a file or a non-empty folder of something else.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    counts = _counts(splits, trials_per_category)
    root = Path(root).expanduser().absolute()
    existing = _existing_info(root)
    info = _info(seed, counts)  # checks every source before any work
    if existing == info:
        logger.info("real-photo set at %s is up to date", root)
        return root / ANNOTATIONS
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write beside {root}: {exc}") from exc
    try:
        document = _write_set(tmp, info, seed=seed, progress=progress)
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        (tmp / ANNOTATIONS).write_text(data + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        _swap_in(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote %d real-photo trials to %s", len(document["trials"]), root)
    return root / ANNOTATIONS


def _existing_info(root: Path) -> dict[str, Any] | None:
    """The info of the set at ``root``; ``None`` when there is nothing there.

    Raises:
        InvalidArgumentError: ``root`` holds something that is not such a set.
    """
    if not root.exists():
        return None
    if not root.is_dir():
        raise InvalidArgumentError(f"{root} exists and is not a folder")
    if not any(root.iterdir()):
        return None
    try:
        info = json.loads((root / ANNOTATIONS).read_text(encoding="utf-8"))["info"]
        if info["name"] == NAME:
            return info
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise InvalidArgumentError(
        f"{root} is not empty and holds no {NAME} set; refusing to replace it"
    )


def _swap_in(tmp: Path, root: Path) -> None:
    if root.exists():
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
        root.rename(old)
        tmp.rename(root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(root)


def _write_set(folder: Path, info: dict[str, Any], *, seed: int, progress: bool) -> dict:
    (folder / "scenes").mkdir()
    (folder / "references").mkdir()
    images: list[dict] = []
    references: list[dict] = []
    trials: list[dict] = []
    total = sum(sum(c.values()) for c in info["counts"].values())
    bar = tqdm(total=total, desc="real set", unit="trial", disable=not progress)
    with bar:
        for split, per_category in info["counts"].items():
            library = real_trials.load_library(split)
            scene_ids: dict[str, int] = {}
            reference_ids: dict[str, int] = {}
            for category, count in per_category.items():
                for index in range(count):
                    made = real_trials.render_trial(library, category, index, seed=seed)
                    image_id = scene_ids.get(made.scene_key) if made.scene_key else None
                    if image_id is None:
                        image_id = len(images) + 1
                        name = f"scenes/{image_id:06d}.png"
                        real_compose.save_rgb(folder / name, made.scene, PNG)
                        height, width = made.scene.shape[:2]
                        images.append(
                            {
                                "id": image_id,
                                "file_name": name,
                                "height": height,
                                "width": width,
                                "split": split,
                                "source": made.scene_source,
                            }
                        )
                        if made.scene_key:
                            scene_ids[made.scene_key] = image_id
                    reference_id = reference_ids.get(made.reference_key)
                    if reference_id is None:
                        reference_id = len(references) + 1
                        name = f"references/{reference_id:06d}.png"
                        real_compose.save_rgb(folder / name, made.reference, PNG)
                        height, width = made.reference.shape[:2]
                        references.append(
                            {
                                "id": reference_id,
                                "file_name": name,
                                "box": None,
                                "height": height,
                                "width": width,
                                "split": split,
                                "source": made.reference_source,
                            }
                        )
                        reference_ids[made.reference_key] = reference_id
                    trials.append(
                        {
                            "id": len(trials) + 1,
                            "image_id": image_id,
                            "reference_id": reference_id,
                            "present": made.present,
                            "category": category,
                            "split": split,
                            "boxes": [[round(float(v), 2) for v in box] for box in made.boxes],
                            "masks": None
                            if made.masks is None
                            else [encode_rle(mask) for mask in made.masks],
                            "distractors": made.distractors,
                        }
                    )
                    bar.update(1)
    return {"info": info, "images": images, "references": references, "trials": trials}
