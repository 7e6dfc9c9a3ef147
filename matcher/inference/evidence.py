"""Match mode with every kind of evidence: Siamese proposals, embedder verification,
geometric verification and proposals, template matching, colour, fused into one calibrated
probability.

For one reference in one scene (:func:`fuse_candidates`):

1. the Siamese search's pool of boxes (no score floor) is ranked by the verified
   appearance score (:func:`matcher.inference.verify.combine_scores`, or the Siamese score
   without an embedder); the best ``geometric_candidates`` go on;
2. each gets the geometric evidence of its region; a plausible homography replaces the
   box by the projected outline's bounding box (the network's box is rarely as tight);
3. with a template-matching stage (:mod:`matcher.inference.ncc`), its best correlation
   peaks over the scene are candidates too, verified like the Siamese ones; a peak
   overlapping a candidate by IoU >= 0.5 is that candidate already and adds nothing;
4. the geometric stage's own whole-scene fits add the instances the search missed (a fit
   overlapping a candidate by IoU >= 0.5 lends it its evidence instead); a proposal's
   Siamese score is the best pool score overlapping it, its similarity is embedded anew;
5. every candidate's colour similarity to the reference is measured, and with the
   template-matching stage its best correlation with the reference around its box;
6. the evidence becomes a probability (:mod:`matcher.inference.fusion`), and
   non-maximum suppression keeps the best of overlapping candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.inference.fusion import (
    Calibration,
    colour_histogram,
    colour_similarity,
    evidence_vector,
    fallback_probability,
)
from matcher.inference.geometric import (
    NO_EVIDENCE,
    Correspondences,
    Evidence,
    GeometricVerifier,
    ReferenceKeypoints,
    SceneFeatures,
)
from matcher.inference.match import Candidate
from matcher.inference.ncc import NccQuery
from matcher.inference.verify import Verifier, combine_scores

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ScoredCandidate:
    """A candidate with its evidence and calibrated probability.

    Attributes:
        box: xyxy, scene pixels (refined by the homography when one fits).
        probability: P(the box holds the reference), or the fallback score.
        evidence: the named evidence (:func:`matcher.inference.fusion.evidence_vector`).
        quad: the projected reference outline, scene pixels, or ``None``.
        source: ``"siamese"``, ``"geometric"`` or ``"template"`` (a proposal of the
            geometric or the template-matching stage).
    """

    box: Box
    probability: float
    evidence: dict[str, float]
    quad: np.ndarray | None
    source: str


@dataclass
class _Working:
    box: Box
    siamese: float
    similarity: float | None
    geo: Evidence
    source: str


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of two sets of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _clip(box: Box, size: tuple[int, int]) -> Box | None:
    height, width = size
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[2], float(width)), min(box[3], float(height))
    return (x0, y0, x1, y1) if x1 - x0 >= 1 and y1 - y0 >= 1 else None


def fuse_candidates(
    *,
    image: np.ndarray,
    pool: Sequence[Candidate],
    embedding: np.ndarray | None,
    colour: np.ndarray,
    reference_geometry: ReferenceKeypoints,
    scene_geometry: SceneFeatures,
    verifier: Verifier | None,
    geometric: GeometricVerifier,
    calibration: Calibration | None,
    candidates: int,
    proposals: int,
    nms_iou: float,
    template: NccQuery | None = None,
    template_proposals: int = 0,
) -> list[ScoredCandidate]:
    """Score one reference's candidates in one scene (see the module docstring).

    Args:
        image: the RGB scene.
        pool: the Siamese search's boxes, any order, raw Siamese scores.
        embedding: the verifier's vector of the reference (``None`` without a verifier).
        colour: the reference's :func:`~matcher.inference.fusion.colour_histogram`.
        reference_geometry / scene_geometry: the geometric stage's features.
        verifier: the embedder stage, or ``None``.
        geometric: the geometric stage.
        calibration: the fitted calibration, or ``None`` for the fallback score.
        candidates: pool boxes verified geometrically.
        proposals: whole-scene geometric fits added at most.
        nms_iou: overlap above which the less probable of two candidates is dropped.
        template: the template-matching stage with this reference and scene, or ``None``
            (no ``template`` evidence).
        template_proposals: correlation peaks added as candidates at most.

    Returns:
        Candidates, most probable first.
    """
    size = (image.shape[0], image.shape[1])
    boxes = np.array([c.box for c in pool], np.float64).reshape(-1, 4)
    siamese = np.clip(np.array([c.score for c in pool], np.float64), 0.0, 1.0)
    similarity = np.zeros(len(pool))
    if verifier is not None and embedding is not None and len(pool):
        similarity = verifier.similarities(embedding, image, [c.box for c in pool])
        ranking = combine_scores(similarity, siamese, verifier.weight)
    else:
        ranking = siamese
    order = np.argsort(-ranking, kind="stable")[:candidates]
    matches: Correspondences = geometric.correspondences(reference_geometry, scene_geometry)

    def verified(box: Box) -> tuple[Box, Evidence]:
        """The geometric evidence of a box's region, and the box refined by it."""
        geo = geometric.evidence(reference_geometry, scene_geometry, matches, box)
        refined = _clip(geo.box, size) if geo.box is not None else None
        if refined is not None and iou_matrix([refined], [box])[0, 0] >= 0.3:
            return refined, geo
        if geo.quad is not None:
            geo = Evidence(matches=geo.matches, inliers=0, spread=0.0, quad=None)
        return box, geo

    work: list[_Working] = []
    for i in order:
        box, geo = verified(tuple(float(v) for v in boxes[i]))
        work.append(_Working(box, float(siamese[i]), float(similarity[i]), geo, "siamese"))

    peaks = template.proposals(template_proposals) if template is not None else []
    for peak, _ in peaks:
        tbox = _clip(peak, size)
        if tbox is None:
            continue
        if work and iou_matrix([tbox], [w.box for w in work])[0].max() >= 0.5:
            continue
        tbox, geo = verified(tbox)
        work.append(_Working(tbox, _pool_score(tbox, boxes, siamese), None, geo, "template"))

    for prop in geometric.proposals(reference_geometry, scene_geometry, matches, proposals):
        pbox = _clip(prop.box, size) if prop.box is not None else None
        if pbox is None:
            continue
        overlap = iou_matrix([pbox], [w.box for w in work])[0] if work else np.zeros(0)
        if overlap.size and overlap.max() >= 0.5:
            best = work[int(overlap.argmax())]
            if prop.inliers > best.geo.inliers:
                best.geo, best.box = prop, pbox
            continue
        work.append(_Working(pbox, _pool_score(pbox, boxes, siamese), None, prop, "geometric"))

    missing = [w for w in work if w.similarity is None]
    if missing:
        if verifier is not None and embedding is not None:
            sims = verifier.similarities(embedding, image, [w.box for w in missing])
        else:
            sims = np.zeros(len(missing))
        for w, sim in zip(missing, sims, strict=True):
            w.similarity = float(sim)

    evidence = [
        evidence_vector(
            siamese=w.siamese,
            similarity=w.similarity or 0.0,
            inliers=w.geo.inliers,
            inlier_ratio=w.geo.inlier_ratio,
            spread=w.geo.spread,
            colour=colour_similarity(colour, colour_histogram(image, w.box)),
            template=template.score(w.box) if template is not None else None,
        )
        for w in work
    ]
    if calibration is not None:
        vectors = np.array([[ev[f] for f in calibration.features] for ev in evidence])
        probs = calibration.probability(vectors).tolist()
    else:
        weight = verifier.weight if verifier is not None else 0.0
        probs = [fallback_probability(ev, verifier_weight=weight) for ev in evidence]
    scored = [
        ScoredCandidate(w.box, float(p), ev, w.geo.quad, w.source)
        for w, p, ev in zip(work, probs, evidence, strict=True)
    ]
    return _nms(scored, nms_iou)


def _pool_score(box: Box, boxes: np.ndarray, siamese: np.ndarray) -> float:
    """The best Siamese score among the pool's boxes overlapping ``box`` by IoU >= 0.5 (0
    when none does)."""
    near = iou_matrix([box], boxes)[0] if len(boxes) else np.zeros(0)
    return float(siamese[near >= 0.5].max()) if np.any(near >= 0.5) else 0.0


def _nms(cands: list[ScoredCandidate], iou: float) -> list[ScoredCandidate]:
    """Most probable first; a candidate is dropped when it overlaps a kept one by more than
    ``iou``, or lies mostly (80 %) inside a kept one whose outline a homography fixed (a
    part of a verified product is not another instance)."""
    cands = sorted(cands, key=lambda c: -c.probability)
    kept: list[ScoredCandidate] = []
    for c in cands:
        if kept and iou_matrix([c.box], [k.box for k in kept])[0].max() > iou:
            continue
        if any(k.quad is not None and _inside_share(c.box, k.box) > 0.8 for k in kept):
            continue
        kept.append(c)
    return kept


def _inside_share(inner: Box, outer: Box) -> float:
    """Share of ``inner``'s area inside ``outer``."""
    w = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    h = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / area if area > 0 else 0.0


__all__ = ["NO_EVIDENCE", "ScoredCandidate", "fuse_candidates", "iou_matrix"]
