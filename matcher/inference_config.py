"""The ``inference`` section of a recipe: tracking mode, match mode and detection settings.

Frozen, typed dataclasses (:class:`TrackConfig`, :class:`MatchConfig`, :class:`DetectConfig`)
gathered in :class:`InferenceConfig` (part of :class:`matcher.config.Recipe`, loaded and
validated by :mod:`matcher.recipes`). Each checks its numbers against a table of ranges
when built, so an out-of-range value fails with the dotted key before any work.

Only builders and entry points read these; modules receive plain arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from matcher.checks import Ranges, check_fields, check_range
from matcher.errors import ConfigError

#: The number formats ``inference.precision`` names (:mod:`matcher.inference_pack`).
PRECISIONS = ("fp32", "bf16")

#: Most instances a recipe may ask for by default (what ``match()`` accepts,
#: :data:`matcher.interface.MAX_INSTANCES_LIMIT`).
MAX_INSTANCES = 100


#: Tracking settings that are weights, rates or probabilities: in ``[0, 1]``.
_TRACK_FRACTIONS = (
    "window_influence",
    "lr",
    "scale_lr",
    "mask_threshold",
    "distractor_threshold",
    "distractor_decay",
    "redetect_threshold",
    "lost_window_influence",
)


@dataclass(frozen=True)
class TrackConfig:
    """Tracking-mode hyper-parameters (those of the original tracker).

    Attributes:
        tracker: registered tracker name (``pysot_rpn``, ``dasiamrpn``, ``siamfc``).
        penalty_k: scale/ratio change penalty.
        window_influence: weight of the cosine window.
        lr: size smoothing factor.
        instance_size: search crop side; ``None`` uses ``model.instance_size``.
        adaptive: DaSiamRPN switches to ``small_object_instance_size`` for objects
            smaller than ``small_object_fraction`` of the image.
        scale_num / scale_step / scale_penalty / scale_lr / response_up: SiamFC's
            multi-scale search.
        mask_threshold: mask probability above which a pixel belongs to the object
            (SiamMask's ``MASK_THERSHOLD`` / ``seg_thr``); also used in match mode.
        distractor_aware: DaSiamRPN's distractor-aware re-scoring and local-to-global
            re-detection (RPN trackers; off reproduces the originals exactly).
        distractor_weight / distractor_threshold / distractor_per_frame /
            distractor_memory / distractor_decay: weight of the distractor term, score a
            secondary peak needs to become a distractor, distractors taken per frame,
            templates remembered, per-frame decay of their weights.
        redetect_threshold: a pick scoring below this counts as lost (0 disables).
        redetect_step: network-input pixels the search grows by per lost frame.
        lost_instance_size: largest search while lost.
        lost_window_influence: cosine-window weight while lost.
    """

    tracker: str
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.4
    instance_size: int | None = None
    adaptive: bool = False
    small_object_instance_size: int = 287
    small_object_fraction: float = 0.004
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_up: int = 16
    mask_threshold: float = 0.3
    distractor_aware: bool = False
    distractor_weight: float = 0.5
    distractor_threshold: float = 0.6
    distractor_per_frame: int = 3
    distractor_memory: int = 8
    distractor_decay: float = 0.2
    redetect_threshold: float = 0.0
    redetect_step: int = 64
    lost_instance_size: int = 831
    lost_window_influence: float = 0.001

    _RANGES: ClassVar[Ranges] = (
        *((name, 0.0, 1.0, False) for name in _TRACK_FRACTIONS),
        ("penalty_k", 0.0, 100.0, False),
        ("distractor_weight", 0.0, 100.0, False),
        ("scale_penalty", 0.0, 1.0, True),
        ("scale_step", 0.0, 10.0, True),
        ("scale_num", 1, 15, False),
        ("response_up", 1, 64, False),
        ("small_object_fraction", 0.0, 1.0, False),
        ("distractor_per_frame", 0, 100, False),
        ("distractor_memory", 0, 1000, False),
        ("redetect_step", 0, 4096, False),
        *(
            (name, 1, 4096, False)
            for name in ("instance_size", "small_object_instance_size", "lost_instance_size")
        ),
    )

    def __post_init__(self) -> None:
        check_fields(self, "inference.track.", self._RANGES)


@dataclass(frozen=True)
class MatchConfig:
    """Match mode: the one-shot search of a whole scene.

    Attributes:
        score_threshold: instances scoring below are dropped.
        max_instances: default cap on returned instances.
        nms_iou: IoU above which a lower-scored candidate is suppressed.
        min_object_fraction / max_object_fraction: range of product sizes searched, as
            the product box's longer side over the scene's shorter side.
        scale_step: ratio between consecutive pyramid levels.
        max_upscale: the scene is never enlarged by more than this.
        working_size: levels larger than this (pixels, either side) are tiled.
        pre_nms_top_k: candidates kept per level and reference before NMS.
        penalty_k: penalty on box size/ratio departing from the reference's at that level.
        box_voting_iou: each kept box becomes the score-weighted mean of the candidates
            overlapping it by at least this IoU (0 disables).
        distractor_weight: strength of distractor-aware re-scoring (``match(...,
            distractor_aware=True)``).
        distractor_candidates: candidates compared with each other when re-scoring.
        verifier: a second, verification stage (empty: none): an embedder checkpoint
            (:mod:`matcher.embedder`), either the name of one shipped under ``weights/``
            (``embedder_default``) or a file path. The best ``verifier_candidates`` boxes
            of the Siamese search are cut from the scene, embedded and compared with the
            reference's embedding; see :mod:`matcher.inference.verify`.
        verifier_weight: share of the verification similarity in the final score,
            ``similarity ** w * siamese_score ** (1 - w)``, in ``[0, 1]``.
        verifier_candidates: boxes verified per reference.
        verifier_context: the embedded squares are the box's longer side times
            ``1 + verifier_context`` (as the embedder was trained).
        geometric: add geometric verification and proposals with local features and
            fuse all evidence into one score (:mod:`matcher.inference.evidence`).
        geometric_candidates: best (verified) Siamese boxes checked geometrically.
        geometric_proposals: whole-scene homography fits added at most.
        calibration: with ``geometric``, the fitted calibration turning the evidence into
            P(instance is the reference): a file written by ``siammatch calibrate``, or
            the bare name of one under ``weights/`` (empty: the uncalibrated fallback of
            :func:`matcher.inference.fusion.fallback_probability`).
        template: with ``geometric``, add multi-scale template matching (normalised
            cross-correlation on a downscaled scene, :mod:`matcher.inference.ncc`): its
            best peaks become candidates and every candidate gains the ``template``
            evidence. A calibration fitted with that evidence needs it on. Without
            ``geometric`` (no fusion) it has no effect, so switching the geometric stage
            off needs no second override.
        template_proposals: correlation peaks added as candidates at most (0: the
            evidence only).
        coarse_to_fine: search coarse-to-fine (:mod:`matcher.inference.refine`) rather
            than every pyramid level in full.
        coarse_max_scale: the coarse pass searches no level enlarging the scene beyond
            this.
        coarse_level_stride: the coarse pass searches every n-th pyramid level.
        refine_candidates: coarse candidates per reference looked at again at their own
            scale.
        refine_min_score: coarse candidates scoring below are not refined.
    """

    score_threshold: float = 0.5
    max_instances: int = 5
    nms_iou: float = 0.5
    min_object_fraction: float = 0.1
    max_object_fraction: float = 1.0
    scale_step: float = 1.26
    max_upscale: float = 4.0
    working_size: int = 1024
    pre_nms_top_k: int = 300
    penalty_k: float = 0.04
    box_voting_iou: float = 0.7
    distractor_weight: float = 1.0
    distractor_candidates: int = 12
    verifier: str = ""
    verifier_weight: float = 0.8
    verifier_candidates: int = 32
    verifier_context: float = 0.1
    geometric: bool = False
    geometric_candidates: int = 10
    geometric_proposals: int = 3
    calibration: str = ""
    template: bool = False
    template_proposals: int = 1
    coarse_to_fine: bool = False
    coarse_max_scale: float = 0.8
    coarse_level_stride: int = 1
    refine_candidates: int = 3
    refine_min_score: float = 0.1

    _RANGES: ClassVar[Ranges] = (
        ("score_threshold", 0.0, 1.0, False),
        ("max_instances", 1, MAX_INSTANCES, False),
        ("nms_iou", 0.0, 1.0, True),
        ("max_object_fraction", 0.0, 10.0, True),
        ("scale_step", 1.0, 10.0, True),
        ("max_upscale", 0.0, 64.0, True),
        ("pre_nms_top_k", 1, 100_000, False),
        ("penalty_k", 0.0, 100.0, False),
        ("box_voting_iou", 0.0, 1.0, False),
        ("distractor_weight", 0.0, 100.0, False),
        ("distractor_candidates", 1, 1000, False),
        ("verifier_weight", 0, 1, False),
        ("verifier_context", 0, 2, False),
        ("geometric_candidates", 1, 1000, False),
        ("geometric_proposals", 0, 100, False),
        ("template_proposals", 0, 100, False),
        ("coarse_max_scale", 0.0, 64.0, True),
        ("coarse_level_stride", 1, 16, False),
        ("refine_candidates", 0, 1000, False),
        ("refine_min_score", 0.0, 1.0, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "inference.match.", self._RANGES)
        check_range(
            "inference.match.min_object_fraction",
            self.min_object_fraction,
            0.0,
            self.max_object_fraction,
            open_low=True,
        )
        if self.calibration and not self.geometric:
            raise ConfigError(
                "inference.match.calibration needs inference.match.geometric: true (the "
                "calibration fuses the geometric evidence)"
            )
        if self.verifier_candidates < 1:
            raise ConfigError(
                "inference.match.verifier_candidates must be at least 1, got "
                f"{self.verifier_candidates}"
            )


@dataclass(frozen=True)
class CatalogSearchConfig:
    """How ``/v1/search`` (:func:`index.search.search_scene`) verifies its candidates: the
    match-mode settings it changes (``None``: as in ``inference.match``). A catalog search
    verifies several products that retrieval already chose, so it can afford fewer checks
    per product than a one-shot match.

    Attributes:
        verifier_candidates: Siamese boxes the embedder re-scores per product.
        geometric_candidates: boxes checked with RootSIFT homographies per product.
    """

    verifier_candidates: int | None = None
    geometric_candidates: int | None = None

    _RANGES: ClassVar[Ranges] = (
        ("verifier_candidates", 1, 1000, False),
        ("geometric_candidates", 1, 1000, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "inference.catalog_search.", self._RANGES)

    def applied_to(self, match: MatchConfig) -> MatchConfig:
        """``match`` with this section's settings in place of its own."""
        changes = {k: getattr(self, k) for k, *_ in self._RANGES if getattr(self, k) is not None}
        return dataclasses.replace(match, **changes) if changes else match


@dataclass(frozen=True)
class DetectConfig:
    """Inference of the detection family (``siam_mask_rcnn``); ``match`` sets its
    ``score_threshold``, ``max_instances`` and ``nms_iou``.

    Attributes:
        box_score_threshold: detections scoring below are dropped inside the heads,
            before NMS (keep it low; ``match.score_threshold`` filters the results).
        detections_per_image: most detections per scene and reference after NMS.
        mask_threshold: mask probability above which a pixel belongs to the instance.
    """

    box_score_threshold: float = 0.05
    detections_per_image: int = 100
    mask_threshold: float = 0.5


@dataclass(frozen=True)
class InferenceConfig:
    """Tracking and match-mode settings.

    Attributes:
        track: tracking mode; required by the Siamese tracker families, ``None`` for
            models without one (the detector).
        match: match mode (one-shot search of a whole scene).
        detect: the detection family's inference settings (defaults when ``None``).
        catalog_search: what a catalog search changes of ``match`` to verify its
            candidates.
        precision: the number format the prepared Siamese network and its verifier's
            embedder compute their convolutions in: ``"fp32"`` (exact to the parity
            fixtures' tolerances) or ``"bf16"`` (each convolution's input and weights
            rounded to bfloat16, the sums accumulated in float32 and returned as
            float32: up to 3x faster on CPUs with AMX or AVX512-BF16, and on GPUs; about
            1 % off float32 at the heads of a well-conditioned network, more in deep
            ones, so outputs no longer meet the parity tolerances;
            :mod:`matcher.inference_pack`). Applies where the network is prepared for
            inference (:func:`matcher.load_trained`, ``matcher.load(prepare=True)``); a
            device without native bfloat16 stays on float32, with a warning.
    """

    track: TrackConfig | None = None
    match: MatchConfig = field(default_factory=MatchConfig)
    detect: DetectConfig | None = None
    catalog_search: CatalogSearchConfig = field(default_factory=CatalogSearchConfig)
    precision: Literal["fp32", "bf16"] = "fp32"
