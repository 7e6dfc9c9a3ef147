"""One-shot localisation on held-out scenes: the ``siammatch eval pairs`` protocol.

**Trials.** For every scene of a synthetic (COCO + catalog photos) set, in image id order:

- one *present* trial per catalog product with at least one non-crowd instance in the
  scene: the reference is the product's catalog photo (``Reference.from_image`` with no
  box: the product's foreground), the truth is every instance of that product;
- one *absent* trial: a catalog product with no instance at all in the scene, drawn with
  ``numpy.random.default_rng(seed)`` in scene order, so trials are deterministic.

**Metrics**, per matcher, each at the matcher's own operating threshold (``match`` with
its default ``score_threshold`` and ``max_instances``):

- *IoU* of a present trial: IoU of the best (highest-scoring) returned box with the
  nearest true instance of the product (0 when nothing is returned); *success* is
  ``IoU >= 0.5``; ``success_rate`` and ``mean_iou`` average over present trials, and
  ``success_auc`` is the area under the success curve (:mod:`trainers.evaluate.metrics`);
- *mask IoU* of a present trial: IoU of the best instance's mask with that true instance's
  visible mask (0 when nothing is returned), averaged over present trials; ``None`` for a
  matcher that never returns masks;
- ``fp_rate``: fraction of absent trials where the matcher returns anything;
- ``latency_ms``: median wall time of one ``match`` call (reference preparation
  included: a one-shot query), over all trials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from matcher.errors import InvalidArgumentError
from matcher.images import load_image
from matcher.mask_codec import decode_rle
from matcher.structures import MatchResult, Reference
from trainers.evaluate.metrics import box_iou_pairs, success_auc

logger = logging.getLogger(__name__)

SUCCESS_IOU = 0.5


class Matcher(Protocol):
    """What the protocol needs of a matcher (Siamese or baseline)."""

    @property
    def name(self) -> str: ...

    def match(self, reference: Reference, scene: np.ndarray) -> MatchResult: ...


@dataclass(frozen=True, eq=False)
class Trial:
    """One (reference, scene) query.

    Attributes:
        image_id: COCO id of the scene.
        file_name: scene file, relative to the images folder.
        product_id: the reference product (COCO category id).
        present: whether the product is in the scene.
        gt_boxes: ``(K, 4)`` float64 xyxy boxes of its instances (``K = 0`` when absent).
        gt_masks: the instances' COCO RLE masks, aligned with ``gt_boxes``.
    """

    image_id: int
    file_name: str
    product_id: int
    present: bool
    gt_boxes: np.ndarray
    gt_masks: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Outcome:
    """The scored answer of a matcher to one trial.

    Attributes:
        present: the trial's product is in the scene.
        found: the matcher returned at least one instance.
        iou: best box's IoU with the nearest true instance (present trials; else 0).
        mask_iou: best mask's IoU with that instance, ``None`` without a mask.
        latency_ms: wall time of the ``match`` call.
    """

    present: bool
    found: bool
    iou: float
    mask_iou: float | None
    latency_ms: float


@dataclass(frozen=True)
class Summary:
    """The metrics of one matcher (see the module docstring).

    Attributes:
        matcher: its name.
        success_rate / mean_iou / success_auc / mask_iou / fp_rate / latency_ms: metrics.
        num_present / num_absent: trials.
    """

    matcher: str
    success_rate: float
    mean_iou: float
    success_auc: float
    mask_iou: float | None
    fp_rate: float
    latency_ms: float
    num_present: int
    num_absent: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (rates rounded to 4 decimals, latency to 0.1 ms)."""

        def r(v: float | None, n: int = 4) -> float | None:
            return None if v is None else round(float(v), n)

        return {
            "matcher": self.matcher,
            "success_rate": r(self.success_rate),
            "mean_iou": r(self.mean_iou),
            "success_auc": r(self.success_auc),
            "mask_iou": r(self.mask_iou),
            "fp_rate": r(self.fp_rate),
            "latency_ms": r(self.latency_ms, 1),
            "num_present": self.num_present,
            "num_absent": self.num_absent,
        }


# -- trials ---------------------------------------------------------------------------


def load_document(root: Path) -> dict[str, Any]:
    """``root/annotations.json`` with a ``products`` list (a synthetic set's layout).

    Raises:
        InvalidArgumentError: missing or unreadable, or no catalog products.
    """
    path = Path(root) / "annotations.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not document.get("products"):
        raise InvalidArgumentError(
            f"{path} lists no catalog products (expected a `siammatch synth` dataset)"
        )
    return document


def make_trials(
    document: dict[str, Any],
    *,
    num_scenes: int,
    seed: int,
    exclude_products: Iterable[int] = (),
) -> list[Trial]:
    """The present and absent trials of the first ``num_scenes`` scenes.

    Args:
        document: the COCO document with ``products``.
        num_scenes: scenes used (the first ones by image id).
        seed: seed of the absent-product draws.
        exclude_products: products never used as references (e.g. designs that overlap
            training data).

    Returns:
        Trials in scene order; per scene its present products by id, then its absent one.

    Raises:
        InvalidArgumentError: ``num_scenes < 1`` or more scenes than the set holds.
    """
    images = sorted(document.get("images", []), key=lambda im: im["id"])
    if num_scenes < 1 or num_scenes > len(images):
        raise InvalidArgumentError(
            f"--scenes must be between 1 and {len(images)} (the set's size), got {num_scenes}"
        )
    excluded = set(exclude_products)
    catalog = sorted(int(p["id"]) for p in document["products"] if int(p["id"]) not in excluded)
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in document.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    for image in images[:num_scenes]:
        anns = by_image.get(int(image["id"]), [])
        in_scene = {int(a["category_id"]) for a in anns}
        for pid in sorted(in_scene - excluded):
            mine = [a for a in anns if int(a["category_id"]) == pid]
            if all(a.get("iscrowd", 0) for a in mine):
                continue  # only barely visible instances: no fair query
            boxes = np.array([a["bbox"] for a in mine], np.float64).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]
            trials.append(
                Trial(
                    image_id=int(image["id"]),
                    file_name=str(image["file_name"]),
                    product_id=pid,
                    present=True,
                    gt_boxes=boxes,
                    gt_masks=tuple(a["segmentation"] for a in mine),
                )
            )
        absent = [pid for pid in catalog if pid not in in_scene]
        if absent:
            trials.append(
                Trial(
                    image_id=int(image["id"]),
                    file_name=str(image["file_name"]),
                    product_id=int(absent[int(rng.integers(len(absent)))]),
                    present=False,
                    gt_boxes=np.zeros((0, 4), np.float64),
                    gt_masks=(),
                )
            )
    return trials


# -- scoring --------------------------------------------------------------------------


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``HxW`` bool masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def score_trial(trial: Trial, result: MatchResult, *, latency_ms: float) -> Outcome:
    """Score a matcher's answer to one trial (see the module docstring)."""
    best = result.best
    if not trial.present or best is None:
        return Outcome(
            present=trial.present,
            found=best is not None,
            iou=0.0,
            mask_iou=0.0 if (trial.present and best is None) else None,
            latency_ms=latency_ms,
        )
    ious = box_iou_pairs(np.repeat([best.box], len(trial.gt_boxes), axis=0), trial.gt_boxes)
    nearest = int(np.argmax(ious))
    m_iou = None
    if best.mask is not None:
        m_iou = mask_iou(best.mask, decode_rle(trial.gt_masks[nearest]))
    return Outcome(
        present=True, found=True, iou=float(ious[nearest]), mask_iou=m_iou, latency_ms=latency_ms
    )


def summarise(name: str, outcomes: Sequence[Outcome]) -> Summary:
    """Aggregate outcomes into a :class:`Summary`.

    Mask IoU counts only for a matcher that gave a mask at least once (a present trial
    where it found nothing then counts as mask IoU 0).
    """
    present = [o for o in outcomes if o.present]
    absent = [o for o in outcomes if not o.present]
    ious = np.array([o.iou for o in present], np.float64)
    gives_masks = any(o.mask_iou is not None and o.found for o in present)
    masks = [o.mask_iou or 0.0 for o in present] if gives_masks else []
    latencies = [o.latency_ms for o in outcomes]
    return Summary(
        matcher=name,
        success_rate=float((ious >= SUCCESS_IOU).mean()) if ious.size else 0.0,
        mean_iou=float(ious.mean()) if ious.size else 0.0,
        success_auc=success_auc(ious),
        mask_iou=float(np.mean(masks)) if masks else None,
        fp_rate=float(np.mean([o.found for o in absent])) if absent else 0.0,
        latency_ms=float(np.median(latencies)) if latencies else 0.0,
        num_present=len(present),
        num_absent=len(absent),
    )


# -- running --------------------------------------------------------------------------


def run_trials(
    matcher: Matcher,
    trials: Sequence[Trial],
    *,
    images_dir: Path,
    catalog: dict[int, Path],
    progress: bool = False,
) -> list[Outcome]:
    """Ask ``matcher`` every trial and score its answers.

    Args:
        matcher: anything with ``name`` and ``match(reference, scene)``.
        trials: from :func:`make_trials`.
        images_dir: folder of the scenes.
        catalog: catalog photo path of each product id.
        progress: show a tqdm bar.

    Returns:
        One :class:`Outcome` per trial, in order.
    """
    from tqdm import tqdm

    references: dict[int, Reference] = {}
    scene_key, scene = None, None
    outcomes = []
    for trial in tqdm(trials, desc=f"eval {matcher.name}", unit="trial", disable=not progress):
        if trial.product_id not in references:
            references[trial.product_id] = Reference.from_image(
                catalog[trial.product_id], id=str(trial.product_id)
            )
        if scene_key != trial.file_name:
            scene_key, scene = trial.file_name, load_image(images_dir / trial.file_name)
        start = time.perf_counter()
        result = matcher.match(references[trial.product_id], scene)
        latency = (time.perf_counter() - start) * 1000.0
        outcomes.append(score_trial(trial, result, latency_ms=latency))
    return outcomes


def catalog_paths(document: dict[str, Any], root: Path) -> dict[int, Path]:
    """Catalog photo of every product, ``{product id: path}``.

    Raises:
        InvalidArgumentError: a product lists no catalog photo or its file is missing.
    """
    out = {}
    for product in document["products"]:
        rel = product.get("catalog")
        path = Path(root) / str(rel)
        if not rel or not path.is_file():
            raise InvalidArgumentError(f"product {product.get('id')}: catalog photo {path} missing")
        out[int(product["id"])] = path
    return out


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The summaries as a Markdown table (one row per matcher)."""
    lines = [
        "| matcher | success@0.5 | mean IoU | mask IoU | FP rate (absent) | median ms/match |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        mask = f"{s.mask_iou:.3f}" if s.mask_iou is not None else "–"
        lines.append(
            f"| {s.matcher} | {s.success_rate:.3f} | {s.mean_iou:.3f} | {mask} | "
            f"{s.fp_rate:.3f} | {s.latency_ms:.1f} |"
        )
    return "\n".join(lines) + "\n"
