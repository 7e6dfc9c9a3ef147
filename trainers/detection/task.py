"""The training task of the Siamese Mask R-CNN (family ``siam_mask_rcnn``).

It plugs the detector into the shared loop (:mod:`trainers.loop`): the network comes from
``matcher.build`` (so a trained checkpoint is served by ``matcher.load``), batches are
detection episodes (:mod:`trainers.detection.episodes`), the losses are torchvision's
Mask R-CNN losses on the class-agnostic heads, summed, and validation is held-out AP50.
The loop's backbone freezing acts on ``net.backbone`` (the ResNet body; the FPN, the L1
fusion and the heads always train, as in the original's "heads" stage), DDP wraps the
whole network with ``find_unused_parameters=True`` and AMP autocasts the forward pass.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from matcher.config import Recipe
from trainers.detection.build import build_episode_dataset
from trainers.detection.evaluate import evaluate_episodes
from trainers.detection.targets import batch_to_device, check_targets, collate_episodes
from trainers.task_registry import register_task

logger = logging.getLogger(__name__)

#: The loss terms of torchvision's RPN and RoI heads, in the order they are logged.
LOSS_KEYS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")


@register_task("siam_mask_rcnn")
class SiamMaskRCNNTask:
    """Detection episodes, torchvision losses and held-out AP50 for one recipe.

    Args:
        recipe: resolved recipe of family ``siam_mask_rcnn``.
        device: device the network will run on.
    """

    collate = staticmethod(collate_episodes)
    primary_metric = "val_ap50"

    def __init__(self, recipe: Recipe, device: torch.device) -> None:
        import matcher

        self.recipe = recipe
        built = matcher.build(recipe, device=device)
        self.net = built.net
        self.mask_threshold = built.mask_threshold
        self.reference_context = built.reference_context

    def build_data(self, *, split: str, epoch_length: int | None) -> Dataset | None:
        cfg = self.recipe.train
        if split == "val" and not cfg.val_data:
            return None
        return build_episode_dataset(
            cfg,
            reference_size=self.net.reference_size,
            reference_context=self.reference_context,
            split=split,  # type: ignore[arg-type]
            epoch_length=epoch_length if split == "train" else None,
        )

    def to_device(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        return batch_to_device(batch, device)

    def losses(
        self, model: nn.Module, batch: dict[str, Any], *, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """torchvision's five losses and their sum ``total`` (``generator`` is unused:
        torchvision samples anchors and proposals with the global torch RNG)."""
        check_targets(batch["targets"], batch["scenes"])
        scenes = [scene.float() / 255.0 for scene in batch["scenes"]]
        references = batch["references"].float() / 255.0
        losses = model(scenes, references, batch["targets"])
        out = {key: losses[key].float() for key in LOSS_KEYS}
        out["total"] = sum(out.values())
        return out

    def validate(
        self, net: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        return evaluate_episodes(net, loader, device, mask_threshold=self.mask_threshold)
