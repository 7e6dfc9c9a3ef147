"""Training tasks: what the shared loop needs to know about one kind of network.

The loop (:mod:`trainers.loop`) owns the optimizer, schedule, freezing, AMP, DDP,
checkpoints and hooks; a :class:`~trainers.task_registry.TrainingTask` supplies the parts
that differ between kinds of network: which network to build, which dataset feeds it, how
a batch becomes a loss dictionary, and how held-out data is scored. The Siamese pair
families (SiamFC, SiamRPN/SiamRPN++, SiamMask, SiamFC++) share :class:`PairTask`; other
families (the Siamese Mask R-CNN, the catalog embedder) register their own factory under
their family name in :mod:`trainers.task_registry`; this module imports those modules
explicitly, so every task is registered once it is imported.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import trainers.detection.task
import trainers.embedder  # noqa: F401 - registers the catalog embedder's task
from matcher.config import Recipe
from matcher.errors import UnknownComponentError
from trainers.evaluate.pairs import evaluate_pairs, to_network_input
from trainers.losses import LossWeights, compute_loss, loss_weights
from trainers.targets import build_targets, target_geometry
from trainers.task_registry import RECIPE_SCHEMAS, TASKS, TrainingTask

logger = logging.getLogger(__name__)


def load_training_recipe(name_or_path: str, overrides: list[str] | None = None) -> Any:
    """Load a recipe with the schema of its family (a matcher :class:`Recipe` by default).

    Raises:
        UnknownComponentError: no recipe of that name.
        ConfigError: unknown key, wrong type, or malformed override.
    """
    from matcher.recipes import apply_override, load_raw_recipe, recipe_from_dict

    raw = load_raw_recipe(name_or_path)
    schema = _schema(raw.get("family"))
    for item in overrides or []:
        apply_override(raw, item, schema=schema)
    return recipe_from_dict(raw, schema=schema)


def training_recipe_from_dict(raw: dict[str, Any]) -> Any:
    """Validate a stored recipe (from a training checkpoint) with its family's schema."""
    from matcher.recipes import recipe_from_dict

    family = raw.get("family") if isinstance(raw, dict) else None
    return recipe_from_dict(raw, schema=_schema(family))


def _schema(family: Any) -> type:
    """The recipe dataclass of ``family``: its registered schema, else :class:`Recipe`."""
    return RECIPE_SCHEMAS.get(family) if family in RECIPE_SCHEMAS else Recipe


def build_task(recipe: Any, device: torch.device) -> TrainingTask:
    """The training task of ``recipe``'s family (Siamese pair families by default)."""
    if recipe.family in TASKS:
        return TASKS.get(recipe.family)(recipe, device)
    import matcher

    if recipe.family not in matcher.FAMILIES:
        valid = ", ".join(sorted(set(TASKS) | set(matcher.FAMILIES)))
        raise UnknownComponentError(
            f"no training task for family {recipe.family!r}; valid: {valid}"
        )
    return PairTask(recipe, device)


class PairTask:
    """Training on (template, search) pairs for the Siamese tracker families.

    Args:
        recipe: resolved recipe of a pair family.
        device: device the network will run on.
    """

    collate = None
    primary_metric = "val_mean_iou"

    def __init__(self, recipe: Recipe, device: torch.device) -> None:
        import matcher

        self.recipe = recipe
        built = matcher.build(recipe, device=device)
        self.net = built.net
        self.decoder = built.decoder
        self.geometry = target_geometry(recipe)
        self.input_format = recipe.model.input_format
        self.weights: LossWeights = loss_weights(recipe.train)

    def build_data(self, *, split: str, epoch_length: int | None) -> Dataset | None:
        from trainers.data import build_pair_dataset

        cfg = self.recipe.train
        if split == "val" and not cfg.val_data:
            return None
        model = self.recipe.model
        return build_pair_dataset(
            cfg,
            exemplar_size=model.exemplar_size,
            search_size=self.geometry.search_size,
            context_amount=model.context_amount,
            split=split,
            **({"epoch_length": epoch_length} if split == "train" else {}),
        )

    def to_device(self, batch: dict[str, torch.Tensor], device: torch.device) -> Any:
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def losses(
        self, model: nn.Module, batch: dict[str, torch.Tensor], *, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        cfg = self.recipe.train
        targets = build_targets(
            self.recipe.family,
            batch,
            geometry=self.geometry,
            params=cfg.targets,
            generator=generator,
        )
        z = to_network_input(batch["template"], self.input_format)
        x = to_network_input(batch["search"], self.input_format)
        if "mask_positions" in targets:
            outputs = model(z, x, targets["mask_positions"])
        else:
            outputs = model(z, x)
        outputs = {k: v.float() for k, v in outputs.items()}
        return compute_loss(
            self.recipe.family,
            outputs,
            targets,
            geometry=self.geometry,
            params=cfg.targets,
            weights=self.weights,
        )

    def validate(
        self, net: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        metrics = evaluate_pairs(
            net,
            self.decoder,
            loader,
            offset=self.geometry.offset,
            stride=self.geometry.stride,
            input_format=self.input_format,
            device=device,
        )
        return metrics.as_dict()
