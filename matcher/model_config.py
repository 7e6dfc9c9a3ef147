"""The ``model`` section of a recipe: architecture and input geometry, and what derives from it.

Frozen, typed dataclasses for the backbone, neck, head, anchors, mask branch and the
detection family's RPN / RoI heads, gathered in :class:`ModelConfig` (part of
:class:`matcher.config.Recipe`, loaded and validated by :mod:`matcher.recipes`). The values
derived from them (score-map size and offset, anchors per cell) are computed here, in one
place, and never stored as separate keys.

Only builders and entry points read these; modules receive plain arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from matcher.checks import Ranges, check_fields
from matcher.errors import ConfigError


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

    _RANGES: ClassVar[Ranges] = (
        ("exemplar_size", 1, 4096, False),
        ("instance_size", 1, 8192, False),
        ("stride", 1, 256, False),
        ("base_size", -256, 256, False),  # SiamFC++ trims cells: negative
        ("context_amount", 0.0, 10.0, False),
    )

    def __post_init__(self) -> None:
        check_fields(self, "model.", self._RANGES)
        if self.instance_size < self.exemplar_size:
            raise ConfigError(
                f"model.instance_size ({self.instance_size}) must be at least "
                f"model.exemplar_size ({self.exemplar_size})"
            )


# --------------------------------------------------------------------------------------
# Derived geometry: one place for values computed from the recipe
# --------------------------------------------------------------------------------------


def score_cells(instance_size: int, *, exemplar_size: int, stride: int, base_size: int) -> int:
    """Score-map side for a search crop of ``instance_size`` pixels: the one formula behind
    :func:`score_size` and :meth:`NetGeometry.score_size_at`."""
    return (instance_size - exemplar_size) // stride + 1 + base_size


def score_size(model: ModelConfig, instance_size: int) -> int:
    """Side of the score map for a search crop of ``instance_size`` pixels."""
    return score_cells(
        instance_size,
        exemplar_size=model.exemplar_size,
        stride=model.stride,
        base_size=model.base_size,
    )


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


@dataclass(frozen=True)
class NetGeometry:
    """The network's crop and score-map geometry, computed once from the ``model`` section.

    What the match-mode search, the second-look crops (masks, distractors), the trackers
    and the training targets need to know of a network, in one record (as detectron2's
    ``ShapeSpec``): made by :func:`net_geometry` when a matcher is built and passed on as
    an explicit parameter, never re-derived from the recipe by the code that uses it.

    Attributes:
        exemplar_size: template crop side.
        instance_size: the reference search side (any ``instance_size + k * stride`` works
            in match mode).
        stride: score-map stride in input pixels.
        base_size: extra score cells (PySOT ``BASE_SIZE``).
        context_amount: context around a box when cropping (fraction of ``w + h``).
        offset: input coordinate of score cell 0's centre (:func:`score_offset`).
        score_size: score cells along ``instance_size``.
        num_anchors: anchors per score cell (1 for anchor-free heads).
        min_instance_size: the smallest search side the network takes (``instance_size``
            minus whole strides; :func:`min_search_size`); 0 means ``instance_size``.
    """

    exemplar_size: int
    instance_size: int
    stride: int
    base_size: int
    context_amount: float
    offset: float
    score_size: int
    num_anchors: int
    min_instance_size: int = 0

    @property
    def support(self) -> float:
        """Distance from a cell's centre to the edge of its template window."""
        return max(self.offset, (self.exemplar_size - 1) / 2)

    def score_size_at(self, instance_size: int) -> int:
        """Score cells along a search crop of ``instance_size`` pixels (a tracker's own)."""
        return score_cells(
            instance_size,
            exemplar_size=self.exemplar_size,
            stride=self.stride,
            base_size=self.base_size,
        )

    def fit(self, side: int) -> int:
        """Smallest input side ``>= side`` of the form ``instance_size + k * stride``."""
        return self._fit(max(side, self.instance_size))

    def fit_window(self, side: int) -> int:
        """Smallest input side ``>= side`` of the form ``instance_size + k * stride`` with
        ``k`` of either sign, down to ``min_instance_size`` (windows smaller than the
        tracker's own search)."""
        return self._fit(max(side, self.min_instance_size or self.instance_size))

    def _fit(self, side: int) -> int:
        k = math.ceil((side - self.instance_size) / self.stride)
        return self.instance_size + k * self.stride

    def cells(self, side: int) -> int:
        """Score cells along an input side of the form ``instance_size + k * stride``."""
        base = (self.instance_size - 1 - 2 * self.offset) / self.stride + 1
        return round(base) + (side - self.instance_size) // self.stride


def net_geometry(model: ModelConfig) -> NetGeometry:
    """The :class:`NetGeometry` of ``model`` (at its own ``instance_size``)."""
    return NetGeometry(
        exemplar_size=model.exemplar_size,
        instance_size=model.instance_size,
        stride=model.stride,
        base_size=model.base_size,
        context_amount=model.context_amount,
        offset=score_offset(model),
        score_size=score_size(model, model.instance_size),
        num_anchors=num_anchors(model),
        min_instance_size=min_search_size(model),
    )


def min_search_size(model: ModelConfig) -> int:
    """The smallest search side ``instance_size - k * stride`` (``k >= 0``) the network
    takes: at least the exemplar, at least one score cell, and, where the neck crops maps
    narrower than ``crop_below`` to their centre (PySOT's template crop), a search map no
    narrower than that (or it would be cropped as a template's)."""
    cells = score_size(model, model.instance_size)
    need = max(model.exemplar_size, model.instance_size - (cells - 1) * model.stride)
    if model.neck.name == "adjust":
        # the map the neck sees: the score map plus the cropped template's extent
        features = cells + model.neck.center_size - 1
        need = max(need, model.instance_size - (features - model.neck.crop_below) * model.stride)
    k = max(0, (model.instance_size - need) // model.stride)
    return model.instance_size - k * model.stride
