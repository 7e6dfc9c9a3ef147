"""One-shot matching on a real-photo set: the protocol of ``siammatch eval pairs --set real``.

**The set.** ``root/annotations.json`` (written by :mod:`trainers.evaluate.real_set`) lists
scenes (``images``), product references (``references``: a photo, optionally with the
product's box in it) and ``trials``: one (reference, scene) query each, with its category,
its split (``val`` to calibrate scores, ``test`` to evaluate), whether the product is in
the scene, and the boxes (and optionally COCO RLE masks) of all its instances there.

**Running.** Every trial is asked once, ``match(reference, scene, max_instances=10,
score_threshold=0.0)``, so that scores below the operating threshold are seen too (the
AUROC and the calibration need them); the raw instances (box, score) are kept with the wall
time of the call (reference preparation included, as for a one-shot query; a zero
threshold may let a matcher keep more candidates than at its operating point).

**Scoring**, at the matcher's operating threshold ``t`` (instances scoring ``>= t`` count):

- *top IoU*: IoU of the highest-scoring instance with the nearest true box (0 on absent
  trials or when nothing is returned); a trial is *found* when that instance scores
  ``>= t``;
- ``success_rate`` (present trials, overall and per category): found and top IoU
  ``>= 0.5``; ``mean_iou``: the top IoU of found trials, 0 for the others;
- ``instance_recall`` (``several`` trials): the true instances matched by instances above
  ``t`` — greedily in score order, each true box at most once, at IoU ``>= 0.5`` — over
  all their true instances;
- ``fp_rate`` (absent trials, overall and per category): anything scoring ``>= t``;
- ``auroc``: present against absent trials, ranked by the top score (0 when nothing is
  returned); independent of ``t``;
- ``ece``: the top score read as the probability that the top instance is a correct
  detection (1 iff the trial is present and its top IoU ``>= 0.5``; absent trials are 0),
  over 10 equal-width bins (:mod:`trainers.evaluate.calibration`); independent of ``t``;
- ``mask_iou``: IoU of the top instance's mask with the nearest true instance's mask,
  averaged over present trials (0 when not found); ``None`` without masks;
- ``latency_ms``: median wall time of one ``match`` call.

:mod:`trainers.evaluate.real_summary` aggregates the scored trials per matcher.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from matcher.errors import InvalidArgumentError
from matcher.images import load_image
from matcher.inference.evidence import iou_matrix
from matcher.mask_codec import decode_rle
from matcher.structures import MatchResult, Reference
from trainers.evaluate.pairs_protocol import mask_iou
from trainers.evaluate.real_trials import ABSENT, CATEGORIES

logger = logging.getLogger(__name__)

SUCCESS_IOU = 0.5
#: Instances asked of the matcher per trial.
MAX_INSTANCES = 10
#: Categories of present and absent trials, in the set's order.
PRESENT_CATEGORIES = tuple(c for c in CATEGORIES if c not in ABSENT)
ABSENT_CATEGORIES = tuple(c for c in CATEGORIES if c in ABSENT)
#: The category whose instance recall is reported.
SEVERAL = "several"
SPLITS = ("train", "val", "test")


class Matcher(Protocol):
    """What the protocol needs of a matcher (Siamese or baseline)."""

    @property
    def name(self) -> str: ...

    def match(
        self,
        reference: Reference,
        scene: np.ndarray,
        *,
        max_instances: int | None = None,
        score_threshold: float | None = None,
    ) -> MatchResult: ...


@dataclass(frozen=True, eq=False)
class RealTrial:
    """One (reference, scene) query of a real-photo set.

    Attributes:
        id: the trial's id in the document.
        image_id / file_name: the scene, its file relative to the set's root.
        reference_id / reference_file: the reference photo, relative to the root.
        reference_box: the product's box in the reference photo, or ``None`` (its
            foreground, :meth:`matcher.Reference.from_image`).
        present: whether the product is in the scene.
        category: what the trial tests (``two_view``, ``blur``, ``absent``, ...).
        split: ``train``, ``val`` or ``test``.
        gt_boxes: ``(K, 4)`` float64 xyxy boxes of all its instances (``K = 0`` when absent).
        gt_masks: their COCO RLE masks, aligned with ``gt_boxes``, or ``None``.
    """

    id: int
    image_id: int
    file_name: str
    reference_id: int
    reference_file: str
    reference_box: tuple[float, float, float, float] | None
    present: bool
    category: str
    split: str
    gt_boxes: np.ndarray
    gt_masks: tuple[dict[str, Any], ...] | None


@dataclass(frozen=True, eq=False)
class Answer:
    """A matcher's raw answer to one trial (every instance, whatever its score).

    Attributes:
        trial_id: the trial.
        boxes: ``(N, 4)`` float64 xyxy scene pixels, best first.
        scores: ``(N,)`` float64, decreasing.
        top_mask_iou: mask IoU of the top instance with the nearest true instance
            (present trials with true masks and a returned mask), else ``None``.
        latency_ms: wall time of the ``match`` call.
    """

    trial_id: int
    boxes: np.ndarray
    scores: np.ndarray
    top_mask_iou: float | None
    latency_ms: float


@dataclass(frozen=True)
class RealOutcome:
    """One trial scored at an operating threshold (see the module docstring).

    Attributes:
        trial_id / category / present: from the trial.
        top_score: score of the top instance (0 when nothing was returned).
        iou: top instance's IoU with the nearest true box (0 when absent or nothing).
        found: the top instance scores at least the threshold.
        num_gt / num_matched: true instances, and those matched above the threshold.
        mask_iou: :attr:`Answer.top_mask_iou`.
        latency_ms: wall time of the ``match`` call.
    """

    trial_id: int
    category: str
    present: bool
    top_score: float
    iou: float
    found: bool
    num_gt: int
    num_matched: int
    mask_iou: float | None
    latency_ms: float

    @property
    def success(self) -> bool:
        """Found, and the top box overlaps a true one at IoU >= 0.5."""
        return self.present and self.found and self.iou >= SUCCESS_IOU

    @property
    def correct(self) -> bool:
        """The calibration label: the top instance is a correct detection (any score)."""
        return self.present and self.iou >= SUCCESS_IOU

    def to_record(self) -> dict[str, Any]:
        """The per-trial record of the JSON report."""
        return {
            "trial_id": self.trial_id,
            "category": self.category,
            "present": self.present,
            "top_score": round(self.top_score, 6),
            "iou": round(self.iou, 4),
            "found": self.found,
        }


# -- the document ---------------------------------------------------------------------


def load_real_document(root: str | Path) -> dict[str, Any]:
    """``root/annotations.json`` of a real-photo set.

    Raises:
        InvalidArgumentError: missing or unreadable, or without ``images``, ``references``
            and ``trials`` lists.
    """
    path = Path(root) / "annotations.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), list) for key in ("images", "references", "trials")
    ):
        raise InvalidArgumentError(
            f"{path} is not a real-photo set (expected `images`, `references` and `trials` lists)"
        )
    return document


def _boxes(value: Any, where: str) -> np.ndarray:
    try:
        boxes = np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{where}: boxes must be [x0, y0, x1, y1] lists") from None
    if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2:] <= boxes[:, :2]):
        raise InvalidArgumentError(f"{where}: a box is empty or not finite")
    return boxes


def real_trials(document: dict[str, Any], split: str) -> list[RealTrial]:
    """The trials of one split, by id.

    Raises:
        InvalidArgumentError: no trial in that split, or a malformed trial (unknown scene or
            reference, bad boxes, a present trial without boxes or an absent one with some,
            masks not aligned with the boxes).
    """
    images = {int(im["id"]): im for im in document["images"]}
    references = {int(r["id"]): r for r in document["references"]}
    trials = []
    for raw in sorted(document["trials"], key=lambda t: int(t["id"])):
        if raw.get("split") != split:
            continue
        where = f"trial {raw['id']}"
        image = images.get(int(raw["image_id"]))
        reference = references.get(int(raw["reference_id"]))
        if image is None or reference is None:
            raise InvalidArgumentError(f"{where}: unknown scene or reference id")
        present = bool(raw["present"])
        boxes = _boxes(raw.get("boxes"), where)
        if present != (len(boxes) > 0):
            raise InvalidArgumentError(
                f"{where}: a present trial needs boxes and an absent one has none"
            )
        masks = raw.get("masks")
        if masks is not None and len(masks) != len(boxes):
            raise InvalidArgumentError(f"{where}: {len(masks)} masks for {len(boxes)} boxes")
        ref_box = reference.get("box")
        if ref_box is not None:
            ref_box = tuple(float(v) for v in _boxes(ref_box, f"reference {reference['id']}")[0])
        trials.append(
            RealTrial(
                id=int(raw["id"]),
                image_id=int(image["id"]),
                file_name=str(image["file_name"]),
                reference_id=int(reference["id"]),
                reference_file=str(reference["file_name"]),
                reference_box=ref_box,
                present=present,
                category=str(raw.get("category", "absent" if not present else "unknown")),
                split=split,
                gt_boxes=boxes,
                gt_masks=None if masks is None else tuple(masks),
            )
        )
    if not trials:
        found = sorted({str(t.get("split")) for t in document["trials"]})
        raise InvalidArgumentError(
            f"the set has no trial in split {split!r} (splits found: {', '.join(found) or 'none'})"
        )
    return trials


def load_references(trials: Sequence[RealTrial], root: str | Path) -> dict[int, Reference]:
    """Every trial's reference, read and validated once, and every scene file checked, so
    that a broken set fails before any matching.

    Raises:
        InvalidArgumentError: a scene or reference file is missing.
        InvalidImageError / InvalidBoxError: a reference cannot be read or its box is bad.
    """
    root = Path(root)
    for name in sorted({t.file_name for t in trials}):
        if not (root / name).is_file():
            raise InvalidArgumentError(f"scene {root / name} is missing")
    references: dict[int, Reference] = {}
    for trial in trials:
        if trial.reference_id in references:
            continue
        path = root / trial.reference_file
        if not path.is_file():
            raise InvalidArgumentError(f"reference {path} is missing")
        references[trial.reference_id] = Reference.from_image(
            path, trial.reference_box, id=str(trial.reference_id)
        )
    return references


# -- running and scoring ----------------------------------------------------------------


def greedy_matches(
    pred_boxes: np.ndarray, gt_boxes: np.ndarray, *, iou: float = SUCCESS_IOU
) -> int:
    """True boxes matched by predictions taken in order (best first), each prediction
    claiming the unclaimed true box it overlaps most, when that IoU is at least ``iou``."""
    ious = iou_matrix(pred_boxes, gt_boxes)
    claimed = np.zeros(ious.shape[1], bool)
    for row in ious:
        row = np.where(claimed, -1.0, row)
        if row.size and row.max() >= iou:
            claimed[int(np.argmax(row))] = True
    return int(claimed.sum())


def answer_from_result(trial: RealTrial, result: MatchResult, *, latency_ms: float) -> Answer:
    """Keep the boxes and scores of a match result (and the top instance's mask IoU)."""
    instances = sorted(result.instances, key=lambda inst: -float(inst.score))
    boxes = np.array([inst.box for inst in instances], np.float64).reshape(-1, 4)
    scores = np.array([float(inst.score) for inst in instances], np.float64)
    top_mask = None
    if instances and instances[0].mask is not None and trial.present and trial.gt_masks:
        nearest = int(np.argmax(iou_matrix(boxes[:1], trial.gt_boxes)[0]))
        top_mask = mask_iou(instances[0].mask, decode_rle(trial.gt_masks[nearest]))
    return Answer(trial.id, boxes, scores, top_mask, latency_ms)


def run_real_trials(
    matcher: Matcher,
    trials: Sequence[RealTrial],
    references: dict[int, Reference],
    *,
    root: str | Path,
    progress: bool = False,
) -> list[Answer]:
    """Ask ``matcher`` every trial once, at threshold 0 (see the module docstring).

    Args:
        matcher: anything with ``name`` and ``match(reference, scene, *, max_instances,
            score_threshold)``.
        trials: from :func:`real_trials`.
        references: from :func:`load_references`.
        root: the set's folder (scene files are relative to it).
        progress: show a tqdm bar.

    Returns:
        One :class:`Answer` per trial, in order.
    """
    from tqdm import tqdm

    root = Path(root)
    scene_key, scene = None, None
    answers = []
    for trial in tqdm(trials, desc=f"real {matcher.name}", unit="trial", disable=not progress):
        if scene_key != trial.file_name:
            scene_key, scene = trial.file_name, load_image(root / trial.file_name)
        start = time.perf_counter()
        result = matcher.match(
            references[trial.reference_id],
            scene,
            max_instances=MAX_INSTANCES,
            score_threshold=0.0,
        )
        latency = (time.perf_counter() - start) * 1000.0
        answers.append(answer_from_result(trial, result, latency_ms=latency))
    return answers


def score_answer(trial: RealTrial, answer: Answer, *, threshold: float) -> RealOutcome:
    """Score a raw answer at the operating ``threshold`` (see the module docstring)."""
    order = np.argsort(-answer.scores, kind="stable")
    boxes, scores = answer.boxes[order], answer.scores[order]
    top_score = float(scores[0]) if len(scores) else 0.0
    iou = 0.0
    if trial.present and len(scores):
        iou = float(iou_matrix(boxes[:1], trial.gt_boxes).max())
    return RealOutcome(
        trial_id=trial.id,
        category=trial.category,
        present=trial.present,
        top_score=top_score,
        iou=iou,
        found=bool(len(scores)) and top_score >= threshold,
        num_gt=len(trial.gt_boxes),
        num_matched=greedy_matches(boxes[scores >= threshold], trial.gt_boxes),
        mask_iou=answer.top_mask_iou,
        latency_ms=answer.latency_ms,
    )
