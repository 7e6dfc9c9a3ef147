"""The recipe schema: frozen, typed dataclasses that ``configs/*.yaml`` load into.

A recipe names one model and everything needed to run and train it: ``model`` (architecture
and geometry), ``inference`` (tracking hyper-parameters and the match-mode search) and
``train`` (schedule and data, :mod:`matcher.train_config`). :mod:`matcher.recipes` loads
and validates YAML into these classes. The values derived from a recipe (score-map size
and offset, anchors per cell) are computed here, in one place.

Only builders and entry points read recipes; modules receive plain arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from matcher.checks import check_range
from matcher.errors import ConfigError
from matcher.train_config import TrainConfig

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneConfig:
    """Backbone choice and its constructor arguments.

    Attributes:
        name: registered backbone name (see ``matcher.models.backbones.BACKBONES``).
        used_layers: indices of the stages whose outputs are returned, in order.
        width_mult: channel multiplier (MobileNetV2 x1.4, AlexNet width).
        bn_eps: BatchNorm epsilon (siamfc-pytorch uses 1e-6).
    """

    name: str
    used_layers: tuple[int, ...] = ()
    width_mult: float = 1.0
    bn_eps: float = 1e-5


@dataclass(frozen=True)
class NeckConfig:
    """Adjust layers between backbone and head.

    Attributes:
        name: ``"none"`` or ``"adjust"`` (1x1 conv + BN per level, template centre crop).
        in_channels: channels of each backbone level.
        out_channels: channels after adjustment, one per level.
        center_size: side of the centre crop applied to template features narrower than
            ``crop_below``.
        crop_below: feature maps narrower than this are template maps and get cropped.
    """

    name: str = "none"
    in_channels: tuple[int, ...] = ()
    out_channels: tuple[int, ...] = ()
    center_size: int = 7
    crop_below: int = 20


@dataclass(frozen=True)
class HeadConfig:
    """Correlation head.

    Attributes:
        name: registered head name (``siamfc``, ``depthwise_rpn``, ``multi_rpn``,
            ``upchannel_rpn`` ...).
        in_channels: feature channels entering the head, one per level.
        hidden: hidden width of the correlation branches.
        weighted: multi-level RPN fuses levels with learned softmax weights.
        out_scale: SiamFC response scale.
        num_convs: SiamFC++ head: 3x3 convs in each of the cls and bbox towers
            (video_analyst ``num_conv3x3``; each shrinks the score map by 2 cells).
        conv_bn: SiamFC++ head: per tower conv, whether it has a BatchNorm
            (``head_conv_bn``); empty means none has.
    """

    name: str
    in_channels: tuple[int, ...] = (256,)
    hidden: int = 256
    weighted: bool = False
    out_scale: float = 0.001
    num_convs: int = 3
    conv_bn: tuple[bool, ...] = ()


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor shapes of RPN heads (PySOT convention: base area ``stride**2``)."""

    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)


@dataclass(frozen=True)
class MaskConfig:
    """SiamMask's mask branch.

    Attributes:
        mask_size: side of the mask head's per-cell output (63 in SiamMask).
        refine: masks come from the refine module (127x127, SiamMask-sharp) rather than
            the mask head (SiamMask base).
    """

    mask_size: int = 63
    refine: bool = True


@dataclass(frozen=True)
class RPNConfig:
    """Region proposal network of the detection family (torchvision's
    ``RegionProposalNetwork`` and ``AnchorGenerator``).

    Attributes:
        anchor_sizes: anchor side in network-input pixels, one per pyramid level (P2..P6).
        aspect_ratios: anchor height / width ratios, the same at every level.
        fg_iou / bg_iou: anchors whose best IoU with a true box is at least / below these
            are positives / negatives for the loss.
        batch_size_per_image / positive_fraction: anchors sampled per scene for the loss,
            and the largest share of positives among them.
        pre_nms_top_n_train / post_nms_top_n_train: proposals kept per level before NMS
            and in all after NMS, in training.
        pre_nms_top_n_test / post_nms_top_n_test: the same at inference.
        nms_iou: IoU above which a lower-scored proposal is suppressed.
    """

    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    fg_iou: float = 0.7
    bg_iou: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_top_n_train: int = 2000
    post_nms_top_n_train: int = 2000
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_test: int = 1000
    nms_iou: float = 0.7


@dataclass(frozen=True)
class RoIConfig:
    """Box and mask heads of the detection family (torchvision's ``RoIHeads``).

    Attributes:
        fg_iou / bg_iou: proposals whose best IoU with a true box is at least / below
            these are positives / negatives for the loss.
        batch_size_per_image / positive_fraction: proposals sampled per scene for the box
            loss, and the largest share of positives.
        representation_size: width of the box head's two fully connected layers.
        mask_layers: output channels of the mask head's 3x3 convolutions.
    """

    fg_iou: float = 0.5
    bg_iou: float = 0.5
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    representation_size: int = 1024
    mask_layers: tuple[int, ...] = (256, 256, 256, 256)


@dataclass(frozen=True)
class DetectionConfig:
    """The Siamese Mask R-CNN (family ``siam_mask_rcnn``): a ResNet-FPN shared by scene and
    reference (``model.backbone.name``: ``resnet18``, ``resnet34``, ``resnet50`` or
    ``resnet101``), L1 matching per pyramid level, class-agnostic RPN and RoI heads.

    Attributes:
        min_size / max_size: scenes are resized so their shorter side is ``min_size``
            unless the longer side would exceed ``max_size``.
        reference_size: side of the square reference crop (longer side resized to it,
            then padded).
        reference_context: margin added around a reference box on each side, as a
            fraction of the box's width / height.
        fpn_channels: width of the feature pyramid.
        fused_channels: width after the 1x1 conv that mixes ``[scene, |scene - ref|]``.
        norm: normalisation of the ResNet: ``frozen_bn`` (pretrained statistics, the
            original), ``bn`` (trainable BatchNorm) or ``group`` (GroupNorm, 32 groups;
            for training from scratch with small batches).
        rpn / roi: proposal network and heads.
    """

    min_size: int = 800
    max_size: int = 1024
    reference_size: int = 192
    reference_context: float = 0.1
    fpn_channels: int = 256
    fused_channels: int = 384
    norm: Literal["frozen_bn", "bn", "group"] = "frozen_bn"
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi: RoIConfig = field(default_factory=RoIConfig)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input geometry.

    Attributes:
        backbone / neck / head: component configurations.
        anchor: anchor shapes; ``None`` for anchor-free heads.
        mask: the mask branch (SiamMask); ``None`` for box-only models.
        detection: the detector of family ``siam_mask_rcnn``; ``None`` for the trackers.
        input_format: channel order the network was trained on, ``"bgr"`` or ``"rgb"``.
        exemplar_size: template crop side in pixels.
        instance_size: search crop side in pixels used by the tracker.
        stride: total stride of the score map in input pixels.
        base_size: extra score-map cells beyond ``(instance - exemplar) // stride + 1``
            (PySOT ``BASE_SIZE``; 8 for the ResNet/MobileNet models).
        context_amount: context added around a box when cropping (fraction of w + h).
    """

    backbone: BackboneConfig
    head: HeadConfig
    neck: NeckConfig = field(default_factory=NeckConfig)
    anchor: AnchorConfig | None = None
    mask: MaskConfig | None = None
    detection: DetectionConfig | None = None
    input_format: Literal["bgr", "rgb"] = "bgr"
    exemplar_size: int = 127
    instance_size: int = 255
    stride: int = 8
    base_size: int = 0
    context_amount: float = 0.5


#: Most instances a recipe may ask for by default (what ``match()`` accepts,
#: :data:`matcher.interface.MAX_INSTANCES_LIMIT`).
MAX_INSTANCES = 100


#: ``(field, low, high, open_low)``: the field's value must lie in ``[low, high]`` (``(low,
#: high]`` when ``open_low``); a field set to ``None`` is not checked.
Ranges = tuple[tuple[str, float, float, bool], ...]


def _check_ranges(config: Any, prefix: str, ranges: Ranges) -> None:
    """:func:`~matcher.checks.check_range` for every field of ``ranges`` (keys ``prefix +
    field``)."""
    for name, low, high, open_low in ranges:
        value = getattr(config, name)
        if value is not None:
            check_range(prefix + name, value, low, high, open_low=open_low)


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
        _check_ranges(self, "inference.track.", self._RANGES)


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
    )

    def __post_init__(self) -> None:
        _check_ranges(self, "inference.match.", self._RANGES)
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
    """

    track: TrackConfig | None = None
    match: MatchConfig = field(default_factory=MatchConfig)
    detect: DetectConfig | None = None


@dataclass(frozen=True)
class Recipe:
    """One model recipe: what ``configs/<name>.yaml`` loads into.

    Attributes:
        name: recipe id, equal to the file name without ``.yaml``.
        family: builder family (``siamfc``, ``siamrpn`` ...).
        checkpoint_layout: key layout of the published weights (``pysot``,
            ``dasiamrpn``, ``siamfc_pytorch``, ``siammatch`` ...).
        description: one line for listings.
    """

    name: str
    family: str
    model: ModelConfig
    inference: InferenceConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint_layout: str = "siammatch"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain YAML-able data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------
# Derived geometry: one place for values computed from the recipe
# --------------------------------------------------------------------------------------


def score_size(model: ModelConfig, instance_size: int) -> int:
    """Side of the score map for a search crop of ``instance_size`` pixels."""
    return (instance_size - model.exemplar_size) // model.stride + 1 + model.base_size


def score_offset(model: ModelConfig) -> float:
    """Input-pixel coordinate of score cell 0's centre, for any search size.

    With the search side ``X = instance_size + k * stride`` the score map grows by ``k``
    cells and cell ``j`` is centred on pixel ``score_offset + stride * j``.
    """
    size = score_size(model, model.instance_size)
    return (model.instance_size - 1 - (size - 1) * model.stride) / 2


def num_anchors(model: ModelConfig) -> int:
    """Anchors per score cell (1 for anchor-free heads)."""
    if model.anchor is None:
        return 1
    return len(model.anchor.ratios) * len(model.anchor.scales)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
