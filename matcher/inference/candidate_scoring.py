"""Match mode's candidate scoring around the Siamese search, one reference at a time.

The Siamese search (:func:`matcher.inference.match.search_templates`) proposes candidate
boxes with a Siamese score; the optional stages of a recipe then re-score them. This module
holds those steps as plain functions, taking the stages and settings as arguments:

- :func:`pool_params`: the search keeps a wider pool than the caller asks for when a
  re-scoring stage will look at it, and drops no candidate on its Siamese score when a
  verification stage re-ranks them;
- :func:`rescore_distractors`: distractor-aware re-scoring (candidates that look more like
  another candidate than like the reference are down-weighted,
  :mod:`matcher.inference.distractors`);
- :func:`fuse_evidence`: the verifier's, geometric and template-matching evidence fused
  into one probability per candidate (:mod:`matcher.inference.evidence`).

:class:`matcher.siamese_matcher.SiameseMatcher` runs them for every reference of a
``match_many`` call.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from matcher.inference.distractors import (
    encode_box_templates,
    rescore_by_distractors,
    similarity_matrix,
)
from matcher.inference.evidence import ScoredCandidate, fuse_candidates
from matcher.inference.fusion import Calibration
from matcher.inference.geometric import GeometricVerifier, ReferenceKeypoints, SceneFeatures
from matcher.inference.match import Candidate, SearchParams
from matcher.inference.ncc import NccQuery, NccReference, NccScene, NccVerifier
from matcher.inference.refine import CoarseToFine
from matcher.inference.verify import Verifier
from matcher.inference_config import MatchConfig
from matcher.model_config import NetGeometry


def search_params(cfg: MatchConfig) -> SearchParams:
    """The Siamese search's settings at the recipe's defaults (a call may change the
    limits)."""
    return SearchParams(
        score_threshold=cfg.score_threshold,
        max_instances=cfg.max_instances,
        nms_iou=cfg.nms_iou,
        min_object_fraction=cfg.min_object_fraction,
        max_object_fraction=cfg.max_object_fraction,
        scale_step=cfg.scale_step,
        max_upscale=cfg.max_upscale,
        working_size=cfg.working_size,
        pre_nms_top_k=cfg.pre_nms_top_k,
        box_voting_iou=cfg.box_voting_iou,
        coarse_to_fine=CoarseToFine(
            max_scale=cfg.coarse_max_scale,
            level_stride=cfg.coarse_level_stride,
            candidates=cfg.refine_candidates,
            min_score=cfg.refine_min_score,
        )
        if cfg.coarse_to_fine
        else None,
    )


def pool_params(
    params: SearchParams,
    cfg: MatchConfig,
    *,
    distractor_aware: bool,
    verified: bool,
    geometric: bool,
) -> SearchParams:
    """The Siamese search's settings for a call asking for ``params``. Re-scoring stages
    look at a wider pool than the caller keeps, and the verification stages re-rank the
    search's best boxes whatever their Siamese score.

    Args:
        params: the call's search settings.
        cfg: the recipe's match mode (the pool each stage looks at).
        distractor_aware: candidates are re-scored by :func:`rescore_distractors`.
        verified: a verifier (embedding) stage re-scores the candidates.
        geometric: the geometric stage fuses the evidence (:func:`fuse_evidence`).
    """
    pool = params.max_instances
    if distractor_aware:
        pool = max(pool, cfg.distractor_candidates)
    if verified:
        pool = max(pool, cfg.verifier_candidates)
    if geometric:
        pool = max(pool, cfg.geometric_candidates)
    rescored = verified or geometric
    return dataclasses.replace(
        params,
        max_instances=pool,
        score_threshold=0.0 if rescored else params.score_threshold,
    )


def rescore_distractors(
    net: torch.nn.Module,
    template: list[torch.Tensor],
    scene: np.ndarray,
    cands: list[Candidate],
    *,
    geometry: NetGeometry,
    weight: float,
    device: torch.device,
) -> list[Candidate]:
    """Distractor-aware re-scoring of one reference's candidates, best first (see
    :mod:`matcher.inference.distractors`).

    Args:
        net: the Siamese network.
        template: the reference's template encoding (tensors with batch 1, on ``device``).
        scene: ``(H, W, 3)`` uint8 scene in the network's channel order.
        cands: the reference's candidates (boxes xyxy in scene pixels).
        geometry: the network's crop geometry.
        weight: strength of the re-scoring (``inference.match.distractor_weight``).
        device: where the network runs.
    """
    if len(cands) < 2:
        return cands
    boxes = [c.box for c in cands]
    own = encode_box_templates(net, scene, boxes, geometry=geometry, device=device)
    templates = [torch.cat([r, o]) for r, o in zip(template, own, strict=True)]
    sim = similarity_matrix(net, templates, scene, boxes, geometry=geometry, device=device)
    scores = rescore_by_distractors(
        np.array([c.score for c in cands], np.float32),
        sim[0],
        sim[1:],
        np.array(boxes, np.float32),
        weight=weight,
    )
    order = np.argsort(-scores, kind="stable")
    return [Candidate(box=cands[i].box, score=float(scores[i])) for i in order]


def fuse_evidence(
    image: np.ndarray,
    cands: list[Candidate],
    *,
    embedding: np.ndarray | None,
    colour: np.ndarray | None,
    reference_geometry: ReferenceKeypoints | None,
    scene_geometry: SceneFeatures | None,
    reference_ncc: NccReference | None,
    scene_ncc: NccScene | None,
    verifier: Verifier | None,
    geometric: GeometricVerifier | None,
    ncc: NccVerifier | None,
    calibration: Calibration | None,
    cfg: MatchConfig,
) -> list[ScoredCandidate]:
    """Every candidate of one reference with its fused evidence, most probable first.

    Args:
        image: ``(H, W, 3)`` uint8 RGB scene.
        cands: the reference's Siamese candidates (the pool of :func:`pool_params`).
        embedding / colour / reference_geometry / reference_ncc: what the reference's
            encoding carries for the verifier, the colour and geometric evidence and the
            template-matching stage.
        scene_geometry / scene_ncc: the scene prepared by the geometric and
            template-matching stages.
        verifier / geometric / ncc / calibration: the recipe's stages (``geometric`` is
            required; the others may be ``None``).
        cfg: the recipe's match mode (candidates checked, proposals added, NMS IoU).
    """
    assert geometric is not None and reference_geometry is not None and colour is not None
    template = None
    if ncc is not None:
        assert reference_ncc is not None and scene_ncc is not None
        template = NccQuery(ncc, reference_ncc, scene_ncc)
    return fuse_candidates(
        image=image,
        pool=cands,
        embedding=embedding,
        colour=colour,
        reference_geometry=reference_geometry,
        scene_geometry=scene_geometry,
        verifier=verifier,
        geometric=geometric,
        calibration=calibration,
        candidates=cfg.geometric_candidates,
        proposals=cfg.geometric_proposals,
        nms_iou=cfg.nms_iou,
        template=template,
        template_proposals=cfg.template_proposals,
    )
