"""Builders: the only code that turns a recipe's ``model`` section into modules."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision import models as tv_models
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from matcher.errors import ConfigError, UnknownComponentError
from matcher.inference_config import DetectConfig
from matcher.model_config import DetectionConfig, ModelConfig, num_anchors
from matcher.models.backbones import build_backbone
from matcher.models.heads import build_head
from matcher.models.heads.rpn import DepthwiseRPN, DepthwiseXCorr
from matcher.models.l1_matching import L1Fusion
from matcher.models.necks import AdjustNeck
from matcher.models.siam_mask_rcnn import IMAGENET_MEAN, IMAGENET_STD, SiamMaskRCNN
from matcher.models.siamese import SiameseNet
from matcher.models.siammask import Refine, SiamMaskNet


def build_siamese_net(model: ModelConfig) -> SiameseNet:
    """Backbone -> neck -> head network described by ``model``, in eval mode.

    Raises:
        UnknownComponentError: a component name is not registered.
        ConfigError: the neck or head sizes do not fit the backbone.
    """
    bb = model.backbone
    backbone = build_backbone(
        bb.name, used_layers=bb.used_layers, width_mult=bb.width_mult, bn_eps=bb.bn_eps
    )
    neck = None
    if model.neck.name == "adjust":
        neck = AdjustNeck(
            model.neck.in_channels or tuple(backbone.out_channels),
            model.neck.out_channels,
            center_size=model.neck.center_size,
            crop_below=model.neck.crop_below,
        )
    elif model.neck.name != "none":
        raise UnknownComponentError(f"unknown neck {model.neck.name!r}; valid names: adjust, none")
    head = build_head(model.head, num_anchors=num_anchors(model), stride=model.stride)
    return SiameseNet(backbone=backbone, neck=neck, head=head).eval()


def build_siammask_net(model: ModelConfig) -> SiamMaskNet:
    """SiamMask described by ``model`` (needs ``model.mask``), in eval mode.

    Raises:
        ConfigError: the recipe has no ``mask`` section or the neck is not one level.
    """
    if model.mask is None:
        raise ConfigError("a SiamMask recipe needs a model.mask section")
    if model.neck.name != "adjust" or len(model.neck.out_channels) != 1:
        raise ConfigError("SiamMask adjusts exactly one backbone level (model.neck)")
    bb = model.backbone
    backbone = build_backbone(
        bb.name, used_layers=bb.used_layers, width_mult=bb.width_mult, bn_eps=bb.bn_eps
    )
    if len(backbone.out_channels) != 4:
        raise ConfigError("SiamMask's backbone must return 4 levels (3 skips + the last)")
    channels = model.neck.out_channels[0]
    neck = AdjustNeck(
        (backbone.out_channels[-1],),
        model.neck.out_channels,
        center_size=model.neck.center_size,
        crop_below=model.neck.crop_below,
    )
    head = DepthwiseRPN(num_anchors=num_anchors(model), in_channels=channels, hidden=channels)
    mask_head = DepthwiseXCorr(channels, channels, model.mask.mask_size**2)
    return SiamMaskNet(
        backbone=backbone,
        neck=neck,
        head=head,
        mask_head=mask_head,
        refine_head=(
            Refine(corr_channels=channels, skip_channels=tuple(backbone.out_channels[:3]))
            if model.mask.refine
            else None
        ),
        mask_size=model.mask.mask_size,
    ).eval()


# -- Siamese Mask R-CNN ------------------------------------------------------------------

_RESNETS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": tv_models.resnet18,
    "resnet34": tv_models.resnet34,
    "resnet50": tv_models.resnet50,
    "resnet101": tv_models.resnet101,
}
_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "frozen_bn": FrozenBatchNorm2d,
    "bn": nn.BatchNorm2d,
    "group": lambda channels: nn.GroupNorm(32, channels),
}
#: Pyramid levels P2..P5 (ResNet stages 1-4) and P6 (max-pooled P5), torchvision's names.
_LEVELS = ("0", "1", "2", "3", "pool")
#: Match vs background: the heads are class-agnostic.
_NUM_CLASSES = 2


def build_siam_mask_rcnn_net(
    model: ModelConfig, detect: DetectConfig, *, nms_iou: float
) -> SiamMaskRCNN:
    """The Siamese Mask R-CNN described by ``model`` (needs ``model.detection``), in eval
    mode, with untrained weights (nothing is downloaded).

    Args:
        model: the recipe's model section; ``backbone.name`` is the ResNet depth.
        detect: inference settings of the heads.
        nms_iou: IoU of the final per-reference NMS (``inference.match.nms_iou``).

    Raises:
        ConfigError: no ``detection`` section, a head other than ``mask_rcnn``, or sizes
            out of range.
        UnknownComponentError: an unknown ResNet name.
    """
    det = model.detection
    if det is None:
        raise ConfigError("a siam_mask_rcnn recipe needs a model.detection section")
    _check_detection(model, det, detect, nms_iou)
    make_resnet = _RESNETS.get(model.backbone.name)
    if make_resnet is None:
        raise UnknownComponentError(
            f"unknown backbone {model.backbone.name!r} for siam_mask_rcnn; valid names: "
            f"{', '.join(_RESNETS)}"
        )
    resnet = make_resnet(weights=None, norm_layer=_NORMS[det.norm])
    body = IntermediateLayerGetter(
        resnet, return_layers={f"layer{i + 1}": name for i, name in enumerate(_LEVELS[:4])}
    )
    stage_widths = [resnet.inplanes // 8 * 2**i for i in range(4)]
    fpn = FeaturePyramidNetwork(stage_widths, det.fpn_channels, extra_blocks=LastLevelMaxPool())
    fused = det.fused_channels
    rpn_cfg, roi = det.rpn, det.roi
    anchors = AnchorGenerator(
        sizes=tuple((int(s),) for s in rpn_cfg.anchor_sizes),
        aspect_ratios=(tuple(rpn_cfg.aspect_ratios),) * len(_LEVELS),
    )
    rpn = RegionProposalNetwork(
        anchors,
        RPNHead(fused, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=rpn_cfg.fg_iou,
        bg_iou_thresh=rpn_cfg.bg_iou,
        batch_size_per_image=rpn_cfg.batch_size_per_image,
        positive_fraction=rpn_cfg.positive_fraction,
        pre_nms_top_n={
            "training": rpn_cfg.pre_nms_top_n_train,
            "testing": rpn_cfg.pre_nms_top_n_test,
        },
        post_nms_top_n={
            "training": rpn_cfg.post_nms_top_n_train,
            "testing": rpn_cfg.post_nms_top_n_test,
        },
        nms_thresh=rpn_cfg.nms_iou,
    )
    pooled = list(_LEVELS[:4])
    mask_width = roi.mask_layers[-1]
    roi_heads = RoIHeads(
        MultiScaleRoIAlign(pooled, output_size=7, sampling_ratio=2),
        TwoMLPHead(fused * 7 * 7, roi.representation_size),
        FastRCNNPredictor(roi.representation_size, _NUM_CLASSES),
        fg_iou_thresh=roi.fg_iou,
        bg_iou_thresh=roi.bg_iou,
        batch_size_per_image=roi.batch_size_per_image,
        positive_fraction=roi.positive_fraction,
        bbox_reg_weights=None,
        score_thresh=detect.box_score_threshold,
        nms_thresh=nms_iou,
        detections_per_img=detect.detections_per_image,
        mask_roi_pool=MultiScaleRoIAlign(pooled, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(fused, list(roi.mask_layers), 1),
        mask_predictor=MaskRCNNPredictor(mask_width, mask_width, _NUM_CLASSES),
    )
    return SiamMaskRCNN(
        backbone=body,
        fpn=fpn,
        fusion=L1Fusion(_LEVELS, det.fpn_channels, fused),
        rpn=rpn,
        roi_heads=roi_heads,
        transform=GeneralizedRCNNTransform(
            det.min_size, det.max_size, list(IMAGENET_MEAN), list(IMAGENET_STD)
        ),
        reference_size=det.reference_size,
    ).eval()


def _check_detection(
    model: ModelConfig, det: DetectionConfig, detect: DetectConfig, nms_iou: float
) -> None:
    if model.head.name != "mask_rcnn":
        raise ConfigError(
            f"siam_mask_rcnn uses the Mask R-CNN heads: model.head.name must be 'mask_rcnn', "
            f"got {model.head.name!r}"
        )
    positive = {
        "model.detection.min_size": det.min_size,
        "model.detection.max_size": det.max_size,
        "model.detection.reference_size": det.reference_size,
        "model.detection.fpn_channels": det.fpn_channels,
        "model.detection.fused_channels": det.fused_channels,
        "model.detection.rpn.batch_size_per_image": det.rpn.batch_size_per_image,
        "model.detection.rpn.pre_nms_top_n_train": det.rpn.pre_nms_top_n_train,
        "model.detection.rpn.post_nms_top_n_train": det.rpn.post_nms_top_n_train,
        "model.detection.rpn.pre_nms_top_n_test": det.rpn.pre_nms_top_n_test,
        "model.detection.rpn.post_nms_top_n_test": det.rpn.post_nms_top_n_test,
        "model.detection.roi.batch_size_per_image": det.roi.batch_size_per_image,
        "model.detection.roi.representation_size": det.roi.representation_size,
        "inference.detect.detections_per_image": detect.detections_per_image,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if det.min_size > det.max_size:
        raise ConfigError(f"model.detection.min_size {det.min_size} exceeds max_size")
    if len(det.rpn.anchor_sizes) != len(_LEVELS) or min(det.rpn.anchor_sizes) < 1:
        raise ConfigError(
            f"model.detection.rpn.anchor_sizes needs {len(_LEVELS)} positive sizes (P2..P6), "
            f"got {list(det.rpn.anchor_sizes)}"
        )
    if not det.rpn.aspect_ratios or min(det.rpn.aspect_ratios) <= 0:
        raise ConfigError("model.detection.rpn.aspect_ratios must be positive numbers")
    if not det.roi.mask_layers or min(det.roi.mask_layers) < 1:
        raise ConfigError("model.detection.roi.mask_layers must list positive widths")
    if det.reference_context < 0:
        raise ConfigError("model.detection.reference_context must be >= 0")
    unit = {
        "model.detection.rpn.fg_iou": det.rpn.fg_iou,
        "model.detection.rpn.bg_iou": det.rpn.bg_iou,
        "model.detection.rpn.positive_fraction": det.rpn.positive_fraction,
        "model.detection.rpn.nms_iou": det.rpn.nms_iou,
        "model.detection.roi.fg_iou": det.roi.fg_iou,
        "model.detection.roi.bg_iou": det.roi.bg_iou,
        "model.detection.roi.positive_fraction": det.roi.positive_fraction,
        "inference.detect.box_score_threshold": detect.box_score_threshold,
        "inference.detect.mask_threshold": detect.mask_threshold,
        "inference.match.nms_iou": nms_iou,
    }
    for key, value in unit.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} must be within [0, 1], got {value}")
