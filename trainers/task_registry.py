"""The registry of training tasks: which task trains a family, and with which recipe schema.

A family outside the Siamese pair families (the Siamese Mask R-CNN, the catalog embedder)
registers its task factory here with :func:`register_task`, and with it the dataclass its
recipes are validated with when that is not :class:`matcher.config.Recipe`. The registries
are :class:`matcher.registry.Registry` instances like every other name -> component table
of the project (backbones, heads, trackers, losses, targets). :mod:`trainers.tasks` imports
the registering modules explicitly; this module imports none of them, so they can import
it without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from matcher.registry import Registry


class TrainingTask(Protocol):
    """The family-specific half of training.

    Attributes:
        net: the network to train (unwrapped ``nn.Module``; checkpoints save its state).
        collate: ``DataLoader`` collate function, or ``None`` for the default one.
        primary_metric: key of :meth:`validate`'s result that says "better" (higher is).
    """

    net: nn.Module
    collate: Callable[[list[Any]], Any] | None
    primary_metric: str

    def build_data(self, *, split: str, epoch_length: int | None) -> Dataset | None:
        """The ``train`` or ``val`` dataset (``set_epoch(int)`` for ``train``), or ``None``."""

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """Move a collated batch to ``device``."""

    def losses(
        self, model: nn.Module, batch: Any, *, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Forward ``batch`` through ``model`` (maybe DDP-wrapped); the ``total`` key is used."""

    def validate(
        self, net: nn.Module, loader: DataLoader, device: torch.device
    ) -> dict[str, float]:
        """Held-out metrics (``val_`` prefixed) of ``net`` over ``loader``."""


TaskFactory = Callable[[Any, torch.device], TrainingTask]
#: family -> its training task's factory (pair families are not listed: they share PairTask).
TASKS: Registry[TaskFactory] = Registry("training task")
#: family -> recipe schema, for families whose recipes are not :class:`matcher.config.Recipe`.
RECIPE_SCHEMAS: Registry[type] = Registry("recipe schema")


def register_task(
    family: str, *, schema: type | None = None
) -> Callable[[TaskFactory], TaskFactory]:
    """Register the task factory of ``family`` (and its recipe schema, if it has its own).

    Raises:
        ValueError: ``family`` is already registered.
    """

    def add(factory: TaskFactory) -> TaskFactory:
        TASKS.register(family)(factory)
        if schema is not None:
            RECIPE_SCHEMAS.register(family)(schema)
        return factory

    return add
