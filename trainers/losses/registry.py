"""The registry of training losses, keyed by recipe family, and the loss weights.

A loss function takes the network's raw outputs and the family's targets
(:mod:`trainers.targets`) and returns a dict of scalar components plus ``"total"``:
``fn(outputs, targets, *, geometry, params, weights) -> dict[str, Tensor]``. Components are
unweighted; every component key names the weight applied to it in the total (``cls``,
``loc``, ``mask``, ``ctr``), so ``total = sum(getattr(weights, k) * v)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from matcher.errors import InvalidArgumentError
from matcher.registry import Registry
from matcher.train_config import TargetConfig, TrainConfig
from trainers.targets.geometry import TargetGeometry

LossFn = Callable[..., dict[str, torch.Tensor]]

LOSSES: Registry[LossFn] = Registry("loss family")


@dataclass(frozen=True, kw_only=True)
class LossWeights:
    """Weights of the loss components in the total.

    Attributes:
        cls: classification (logistic, cross-entropy or focal).
        loc: box regression (smooth L1 on deltas; SiamFC++'s IoU loss).
        mask: SiamMask's mask BCE.
        ctr: SiamFC++'s centre-ness BCE.
    """

    cls: float
    loc: float
    mask: float
    ctr: float


def loss_weights(train: TrainConfig) -> LossWeights:
    """The loss weights of a recipe's ``train`` section."""
    return LossWeights(
        cls=train.cls_weight, loc=train.loc_weight, mask=train.mask_weight, ctr=train.ctr_weight
    )


def compute_loss(
    family: str,
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """The training loss of ``family``.

    Args:
        family: recipe family (``siamfc``, ``siamrpn``, ``siammask``, ``siamfcpp``).
        outputs: raw network outputs (documented on each loss).
        targets: from :func:`trainers.targets.build_targets` for the same family.
        geometry: the geometry the targets were built with.
        params: loss shapes (``focal_alpha``, ``focal_gamma``, ``smooth_l1_beta``).
        weights: component weights.

    Returns:
        Scalar float32 components and ``"total"``, their weighted sum.

    Raises:
        UnknownComponentError: ``family`` has no loss.
        InvalidArgumentError: an output or target is missing or has the wrong shape.
    """
    fn = LOSSES.get(family)
    return fn(outputs, targets, geometry=geometry, params=params, weights=weights)


def with_total(
    components: dict[str, torch.Tensor], weights: LossWeights
) -> dict[str, torch.Tensor]:
    """Add ``"total"``: each component times the weight of the same name, summed."""
    total = sum(getattr(weights, name) * value for name, value in components.items())
    return {**components, "total": total}


def require(
    tensors: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...], *, what: str
) -> torch.Tensor:
    """``tensors[key]`` after checking its shape.

    Raises:
        InvalidArgumentError: missing, or not of shape ``shape``.
    """
    if key not in tensors:
        raise InvalidArgumentError(f"{what} lack {key!r}; they have {sorted(tensors)}")
    value = tensors[key]
    if tuple(value.shape) != tuple(shape):
        raise InvalidArgumentError(
            f"{what} {key!r} must have shape {tuple(shape)}, got {tuple(value.shape)}"
        )
    return value


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds; 0 (still in the graph) where it never does."""
    picked = torch.where(mask, values, torch.zeros_like(values))
    return picked.sum() / mask.sum().clamp(min=1)
