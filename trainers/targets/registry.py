"""The registry of target builders, keyed by recipe family, and the batch check.

A target builder turns a collated training batch into the tensors its family's loss
needs: ``fn(batch, *, geometry, params, generator=None) -> dict[str, Tensor]``. The
batch keys it may read (all on the training device, ``B`` pairs):

* ``"search_box"``: ``(B, 4)`` float32, xyxy in search-crop pixels; for a negative pair
  the box of the (wrong) object the crop is centred on;
* ``"search_mask"``: ``(B, X, X)`` uint8 0/1, the gt object's mask (SiamMask);
* ``"has_mask"``: ``(B,)`` bool, whether ``search_mask`` is meaningful;
* ``"label"``: ``(B,)`` int64, 1 for a positive pair, 0 for a negative one.

Targets are built without gradients, on the batch's device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from matcher.errors import InvalidArgumentError
from matcher.registry import Registry
from matcher.train_config import TargetConfig
from trainers.targets.geometry import TargetGeometry

TargetFn = Callable[..., dict[str, torch.Tensor]]

TARGETS: Registry[TargetFn] = Registry("target family")


def build_targets(
    family: str,
    batch: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Training targets of ``family`` for one batch.

    Args:
        family: recipe family (``siamfc``, ``siamrpn``, ``siammask``, ``siamfcpp``).
        batch: the collated batch (see the module docstring).
        geometry: from :func:`~trainers.targets.geometry.target_geometry`.
        params: assignment thresholds and caps (``recipe.train.targets``).
        generator: source of the random subsampling of anchors; the same generator state
            gives the same targets on any device.

    Returns:
        The family's targets (documented on each builder).

    Raises:
        UnknownComponentError: ``family`` has no target builder.
        InvalidArgumentError: the batch misses a key or has a wrong shape.
    """
    fn = TARGETS.get(family)
    with torch.no_grad():
        return fn(batch, geometry=geometry, params=params, generator=generator)


def check_batch(
    batch: Mapping[str, torch.Tensor], geometry: TargetGeometry, *, keys: tuple[str, ...]
) -> int:
    """Validate the batch entries a builder reads.

    Args:
        batch: the collated batch.
        geometry: the expected geometry (search side).
        keys: the entries needed, from ``search_box``, ``label``, ``search_mask``,
            ``has_mask``.

    Returns:
        The batch size ``B``.

    Raises:
        InvalidArgumentError: a key is missing or an entry has the wrong shape.
    """
    missing = [k for k in keys if k not in batch]
    if missing:
        raise InvalidArgumentError(f"training batch lacks {missing}; it has {sorted(batch)}")
    boxes = batch["search_box"]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InvalidArgumentError(f"search_box must be (B, 4), got {tuple(boxes.shape)}")
    num = boxes.shape[0]
    x = geometry.search_size
    expected = {"label": (num,), "has_mask": (num,), "search_mask": (num, x, x)}
    for key in keys:
        if key in expected and tuple(batch[key].shape) != expected[key]:
            raise InvalidArgumentError(
                f"{key} must have shape {expected[key]}, got {tuple(batch[key].shape)}"
            )
    return num
