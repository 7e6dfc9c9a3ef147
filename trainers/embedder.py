"""Training the catalog embedder (:mod:`matcher.embedder`) with the shared training core.

An embedder recipe (``family: embedder``, e.g. ``configs/embedders/default.yaml``) holds
the :class:`~matcher.embedder.EmbedderSpec` under ``embedder:`` and the usual ``train:``
section. Its data are the pair sources of the matchers: a positive pair is a product's
reference crop (a catalog photo in ``catalog`` mode) and the same product's crop in a
scene. Both sides are cut as squares around their boxes — the side is the box's longer
side times ``1 + crop_context``, like the letterboxed crops the catalog embeds — and
resized to the embedder's input. The loss is symmetric InfoNCE over the batch (the other
products of the batch are the negatives, look-alike families included; a product's second
pair in a batch is dropped, so it is never its own negative). Validation
reports how often a scene crop's nearest reference in the held-out batch is its own
product (``val_top1``) and the mean cosine of the true pairs.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.ops import roi_align

from matcher.embedder import SPEC_KEY, EmbedderSpec, build_embedder
from matcher.errors import ConfigError
from matcher.train_config import TrainConfig
from trainers.evaluate.pairs import to_network_input
from trainers.losses.contrastive import info_nce
from trainers.task_registry import register_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedderRecipe:
    """What an embedder recipe loads into.

    Attributes:
        name / description: as for matcher recipes.
        family: always ``"embedder"``.
        embedder: the network's numbers.
        train: data, schedule and optimizer (the matcher recipes' training schema).
        crop_context: square crops are the box's longer side times ``1 + crop_context``.
        temperature: InfoNCE temperature.
        exemplar_size / search_size: sides of the pair crops the sources cut (the boxes
            are then re-cut from them).
        context_amount: context of the pair crops (tracker convention).
    """

    name: str
    family: Literal["embedder"]
    embedder: EmbedderSpec = field(default_factory=EmbedderSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    crop_context: float = 0.1
    temperature: float = 0.07
    exemplar_size: int = 127
    search_size: int = 255
    context_amount: float = 0.5
    description: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.crop_context <= 2.0:
            raise ConfigError(f"crop_context must be in [0, 2], got {self.crop_context}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the spec sits under ``SPEC_KEY`` so :func:`matcher.embedder.load_embedder`
        reads the saved model directly."""
        out = dataclasses.asdict(self)
        out[SPEC_KEY] = self.embedder.to_dict()
        return _plain(out)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def square_crops(
    images: torch.Tensor, boxes: torch.Tensor, *, size: int, context: float
) -> torch.Tensor:
    """Square crops centred on boxes, resized to ``size``.

    Args:
        images: ``(B, 3, H, W)`` float.
        boxes: ``(B, 4)`` float, xyxy pixels of ``images``.
        size: output side.
        context: the square's side is ``max(w, h) * (1 + context)``.

    Returns:
        ``(B, 3, size, size)`` float (zeros where the square leaves the image).
    """
    boxes = boxes.float()
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True).clamp(min=1.0) * (1 + context)
    squares = torch.cat([centre - side / 2, centre + side / 2], dim=1)
    rois = torch.cat([torch.arange(len(boxes), device=boxes.device)[:, None].float(), squares], 1)
    return roi_align(
        images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True
    )


def first_occurrences(codes: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: True where a code appears for the first time in ``codes``."""
    same = codes[:, None] == codes[None, :]
    earlier = torch.ones_like(same).tril(diagonal=-1)
    return ~(same & earlier).any(dim=1)


class EmbedderTask:
    """The training task of ``family: embedder`` recipes (see the module docstring)."""

    collate = None
    primary_metric = "val_top1"

    def __init__(self, recipe: EmbedderRecipe, device: torch.device) -> None:
        self.recipe = recipe
        self.net = build_embedder(recipe.embedder)
        self.spec = recipe.embedder

    def build_data(self, *, split: str, epoch_length: int | None) -> Dataset | None:
        from trainers.data import build_pair_dataset

        cfg = self.recipe.train
        if split == "val" and not cfg.val_data:
            return None
        return build_pair_dataset(
            cfg,
            exemplar_size=self.recipe.exemplar_size,
            search_size=cfg.search_size or self.recipe.search_size,
            context_amount=self.recipe.context_amount,
            split=split,
            **({"epoch_length": epoch_length} if split == "train" else {}),
        )

    def to_device(self, batch: dict[str, torch.Tensor], device: torch.device) -> Any:
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference and scene crops of the positive pairs, one pair per identity (a second
        pair of a product would be a false negative of the first), as embedder input."""
        keep = (batch["label"] == 1) & first_occurrences(batch["identity"])
        crops = []
        for image_key, box_key in (("template", "template_box"), ("search", "search_box")):
            images = to_network_input(batch[image_key][keep], self.spec.input_format)
            crops.append(
                square_crops(
                    images,
                    batch[box_key][keep],
                    size=self.spec.input_size,
                    context=self.recipe.crop_context,
                )
            )
        return crops[0], crops[1]

    def losses(
        self, model: nn.Module, batch: dict[str, torch.Tensor], *, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        reference, scene = self.views(batch)
        if len(reference) < 2:
            zero = sum(p.sum() for p in model.parameters()) * 0.0
            return {"info_nce": zero, "total": zero}
        z = model(torch.cat([reference, scene]))  # one pass, so DDP sees one forward
        loss = info_nce(
            z[: len(reference)], z[len(reference) :], temperature=self.recipe.temperature
        )
        return {"info_nce": loss, "total": loss}

    @torch.no_grad()
    def validate(
        self, net: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        was_training = net.training
        net.eval()
        hits, cosines, count = 0, 0.0, 0
        try:
            for batch in loader:
                reference, scene = self.views(self.to_device(batch, device))
                if len(reference) < 2:
                    continue
                za, zb = net(reference), net(scene)
                similarity = zb @ za.T
                truth = torch.arange(len(za), device=za.device)
                hits += int((similarity.argmax(dim=1) == truth).sum())
                cosines += float(similarity.diagonal().sum())
                count += len(za)
        finally:
            net.train(was_training)
        return {
            "val_top1": hits / max(count, 1),
            "val_positive_cosine": cosines / max(count, 1),
        }


register_task("embedder", schema=EmbedderRecipe)(EmbedderTask)
