"""Siamese Mask R-CNN: few-shot instance detection and segmentation by L1 matching.

The composition of Michaelis et al. (arXiv 1811.11507) on torchvision's detection parts:
one ResNet-FPN encodes both the scene and the reference; the reference's pyramid is
pooled to one vector per level (k shots averaged); at every level the scene features
and their L1 distance to that vector are concatenated and mixed by a 1x1 conv
(:mod:`matcher.models.l1_matching`); a class-agnostic RPN and RoI box and mask heads
(torchvision's ``RegionProposalNetwork`` and ``RoIHeads`` with 2 classes: background and
"matches the reference") run on the fused maps.

The network holds no per-request state. :meth:`SiamMaskRCNN.encode_reference` and
:meth:`SiamMaskRCNN.encode_scene` return their encodings and :meth:`SiamMaskRCNN.detect`
combines one scene with any number of references, so the scene's backbone pass is
shared. ``forward(scenes, references, targets)`` returns torchvision's loss dict in train
mode and the detections in eval mode.

Shape shorthand / naming: ``B`` scenes, each ``(3, H_b, W_b)`` float RGB in ``[0, 1]``
(any size; the transform resizes them to ``min_size``/``max_size`` and pads them into one
batch); ``R`` references, ``K`` shots each, as ``(R, K, 3, S, S)`` float RGB in ``[0, 1]``
(square crops, see :func:`matcher.crops.reference_crop`); ``C`` the
pyramid width, ``F`` the fused width; levels are keyed ``"0"``..``"3"`` (P2..P5) and
``"pool"`` (P6). Boxes are ``(x0, y0, x1, y1)`` float pixels of the input scene.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from matcher.models.l1_matching import L1Fusion, average_shots, pool_reference

#: Mean and standard deviation of ImageNet RGB in ``[0, 1]`` (torchvision's normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Detections = list[dict[str, torch.Tensor]]


@dataclass(frozen=True, eq=False)
class SceneEncoding:
    """A scene batch after the shared backbone, ready for :meth:`SiamMaskRCNN.detect`.

    Attributes:
        images: the resized, normalised and padded batch (``tensors`` ``(B, 3, H', W')``
            and each scene's resized ``image_sizes``).
        features: level -> ``(B, C, H_l, W_l)`` pyramid features.
        original_sizes: ``(H, W)`` of each input scene (detections are mapped back to it).
    """

    images: ImageList
    features: OrderedDict[str, torch.Tensor]
    original_sizes: list[tuple[int, int]]


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Per-box mask probabilities onto the scene (torchvision's ``paste_masks_in_image``).

    Args:
        masks: ``(N, 1, M, M)`` float probabilities, as :meth:`SiamMaskRCNN.detect` returns.
        boxes: ``(N, 4)`` float xyxy scene pixels of the same detections.
        size: ``(H, W)`` of the scene.

    Returns:
        ``(N, H, W)`` float probabilities (zero outside each box).
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    return paste_masks_in_image(masks, boxes, size)[:, 0]


class SiamMaskRCNN(nn.Module):
    """Siamese Mask R-CNN composed from its parts.

    Args:
        backbone: ResNet body returning level -> ``(N, C_l, H_l, W_l)`` (the part the
            training loop freezes and unfreezes).
        fpn: feature pyramid on the body's outputs, level -> ``(N, C, H_l, W_l)``.
        fusion: the per-level L1 matching and 1x1 mix.
        rpn: class-agnostic region proposal network on the fused maps.
        roi_heads: box and mask heads with 2 classes (background, match).
        transform: scene resizing, normalisation and batching (and mapping detections
            back to the input scenes).
        reference_size: side ``S`` of the reference crops.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        fpn: nn.Module,
        fusion: L1Fusion,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        transform: GeneralizedRCNNTransform,
        reference_size: int,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.fpn = fpn
        self.fusion = fusion
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.transform = transform
        self.reference_size = reference_size

    # -- encoders --------------------------------------------------------------------------

    def pyramid(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Shared backbone and FPN: normalised ``(N, 3, H, W)`` -> level -> ``(N, C, ...)``."""
        return self.fpn(self.backbone(images))

    def encode_reference(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Per-level reference vectors, the ``K`` shots of each reference averaged.

        Args:
            images: ``(R, K, 3, S, S)`` (or ``(K, 3, S, S)`` for one reference) float RGB
                in ``[0, 1]``.

        Returns:
            level -> ``(R, C)``.

        Raises:
            ValueError: wrong rank, channel count or side.
        """
        if images.dim() == 4:
            images = images[None]
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"references must be (R, K, 3, S, S), got {tuple(images.shape)}")
        if images.shape[-2:] != (self.reference_size, self.reference_size):
            raise ValueError(
                f"reference crops must be {self.reference_size}x{self.reference_size}, "
                f"got {tuple(images.shape[-2:])}"
            )
        shots = images.shape[1]
        flat = self.transform.normalize(images.flatten(0, 1))
        return OrderedDict(
            (name, average_shots(pool_reference(level), shots))
            for name, level in self.pyramid(flat).items()
        )

    def encode_scene(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> tuple[SceneEncoding, list[dict[str, torch.Tensor]] | None]:
        """Resize, normalise and batch scenes and run the shared backbone once.

        Args:
            images: ``B`` scenes ``(3, H_b, W_b)`` float RGB in ``[0, 1]``.
            targets: training targets in input-scene pixels (``boxes`` ``(N, 4)`` float32
                xyxy, ``labels`` ``(N,)`` int64, ``masks`` ``(N, H_b, W_b)`` uint8), or
                ``None``.

        Returns:
            The encoding and the targets resized with the scenes.
        """
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        return SceneEncoding(batch, self.pyramid(batch.tensors), sizes), targets

    # -- heads -----------------------------------------------------------------------------

    def _heads(
        self,
        scene: SceneEncoding,
        references: dict[str, torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None,
    ) -> tuple[Detections, dict[str, torch.Tensor], ImageList]:
        fused = self.fusion(scene.features, references)
        count = next(iter(fused.values())).shape[0]
        images = scene.images
        if count != len(images.image_sizes):  # one scene against every reference
            images = ImageList(
                images.tensors.expand(count, -1, -1, -1), list(images.image_sizes) * count
            )
        proposals, rpn_losses = self.rpn(images, fused, targets)
        detections, roi_losses = self.roi_heads(fused, proposals, images.image_sizes, targets)
        return detections, {**rpn_losses, **roi_losses}, images

    def detect(self, scene: SceneEncoding, references: dict[str, torch.Tensor]) -> Detections:
        """Detect every reference in its scene (inference; call in eval mode).

        Args:
            scene: :meth:`encode_scene` of one scene (matched against every reference)
                or of ``R`` scenes (reference ``r`` against scene ``r``).
            references: :meth:`encode_reference` output, level -> ``(R, C)``.

        Returns:
            One dict per reference: ``boxes`` ``(N, 4)`` float xyxy input-scene pixels,
            ``scores`` ``(N,)`` in ``[0, 1]`` (best first), ``labels`` ``(N,)`` int64 (all
            1) and ``masks`` ``(N, 1, M, M)`` float mask probabilities inside each box
            (:func:`paste_masks` puts the wanted ones on the scene; pasting them all
            would cost more than the detection).
        """
        detections, _, images = self._heads(scene, references, None)
        originals = scene.original_sizes
        if len(originals) != len(detections):
            originals = originals * len(detections)
        masks = [d.pop("masks") for d in detections]
        detections = self.transform.postprocess(detections, images.image_sizes, originals)
        for found, box_masks in zip(detections, masks, strict=True):
            found["masks"] = box_masks
        return detections

    def forward(
        self,
        scenes: list[torch.Tensor],
        references: torch.Tensor,
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor] | Detections:
        """Scene ``b`` against reference ``b``.

        Args:
            scenes: ``B`` scenes ``(3, H_b, W_b)`` float RGB in ``[0, 1]``.
            references: ``(B, K, 3, S, S)`` float RGB in ``[0, 1]``.
            targets: required in train mode, see :meth:`encode_scene`; labels are 1.

        Returns:
            Train mode: torchvision's losses (``loss_objectness``, ``loss_rpn_box_reg``,
            ``loss_classifier``, ``loss_box_reg``, ``loss_mask``). Eval mode: the
            detections of :meth:`detect`.

        Raises:
            ValueError: training without targets, or scene and reference counts differ.
        """
        if self.training and targets is None:
            raise ValueError("training needs targets")
        if references.dim() != 5 or references.shape[0] != len(scenes):
            raise ValueError(
                f"{len(scenes)} scenes need (B, K, 3, S, S) references, "
                f"got {tuple(references.shape)}"
            )
        scene, targets = self.encode_scene(scenes, targets)
        vectors = self.encode_reference(references)
        if self.training:
            return self._heads(scene, vectors, targets)[1]
        return self.detect(scene, vectors)
