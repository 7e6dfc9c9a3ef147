"""Losses of the anchor families: SiamRPN / SiamRPN++ (``siamrpn``) and SiamMask.

* ``cls`` (PySOT ``select_cross_entropy_loss``): log-softmax over (background,
  foreground) per anchor; ``0.5 * NLL(positives) + 0.5 * NLL(negatives)``, each the mean
  over the batch's anchors of that label (a term with no anchors is 0); ignored anchors
  (-1) do not count.
* ``loc`` (PySOT ``weight_l1_loss``): smooth L1 (``beta = params.smooth_l1_beta``; 0 is
  PySOT's plain L1) of the four deltas, summed over coordinates, times ``loc_weight``
  (``1 / num_pos`` of the pair on positives), summed and divided by the batch size.
* ``mask`` (SiamMask ``select_mask_logistic_loss``, a soft-margin loss on +-1 labels, which
  is BCE with logits on 0/1 labels): the mean over all pixels of the chosen cells' masks;
  0 when no cell was chosen.

Network outputs (``B`` pairs, ``A`` anchors, ``S`` score side): ``"cls"`` ``(B, 2A, S, S)``
(background channels ``0..A-1``, foreground ``A..2A-1``), ``"loc"`` ``(B, 4A, S, S)``
(``[dx x A, dy x A, dw x A, dh x A]``), and for SiamMask ``"mask_logits"`` ``(N, M, M)``
from ``SiamMaskNet.mask_logits`` at ``targets["mask_positions"]`` (may be absent when
``N == 0``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from matcher.errors import InvalidArgumentError
from matcher.train_config import TargetConfig
from trainers.losses.registry import LOSSES, LossWeights, masked_mean, require, with_total
from trainers.targets.geometry import TargetGeometry


def rpn_components(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    params: TargetConfig,
) -> dict[str, torch.Tensor]:
    """Unweighted ``cls`` and ``loc`` of the RPN (see the module docstring)."""
    if "cls_label" not in targets:
        raise InvalidArgumentError(f"RPN targets lack 'cls_label'; they have {sorted(targets)}")
    labels = targets["cls_label"]
    b, a, s, _ = labels.shape
    cls = require(outputs, "cls", (b, 2 * a, s, s), what="outputs").float()
    loc = require(outputs, "loc", (b, 4 * a, s, s), what="outputs").float()
    loc_target = require(targets, "loc_target", (b, 4, a, s, s), what="targets")
    loc_weight = require(targets, "loc_weight", (b, a, s, s), what="targets")

    log_prob = F.log_softmax(cls.reshape(b, 2, a, s, s), dim=1)
    cls_loss = 0.5 * masked_mean(-log_prob[:, 1], labels == 1) + 0.5 * masked_mean(
        -log_prob[:, 0], labels == 0
    )
    diff = F.smooth_l1_loss(
        loc.reshape(b, 4, a, s, s), loc_target, reduction="none", beta=params.smooth_l1_beta
    ).sum(dim=1)
    loc_loss = (diff * loc_weight).sum() / max(b, 1)
    return {"cls": cls_loss, "loc": loc_loss}


@LOSSES.register("siamrpn")
def rpn_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """SiamRPN's loss.

    Args:
        outputs: ``"cls"``, ``"loc"`` (module docstring).
        targets: from :func:`trainers.targets.anchor.rpn_targets`.
        geometry: unused beyond the shapes carried by the targets.
        params: ``smooth_l1_beta``.
        weights: ``cls`` and ``loc``.

    Returns:
        ``"cls"``, ``"loc"`` and ``"total" = weights.cls * cls + weights.loc * loc``.

    Raises:
        InvalidArgumentError: missing or misshapen outputs or targets.
    """
    return with_total(rpn_components(outputs, targets, params=params), weights)


@LOSSES.register("siammask")
def siammask_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    geometry: TargetGeometry,
    params: TargetConfig,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """SiamMask's loss: the RPN's plus the mask BCE.

    Args:
        outputs: ``"cls"``, ``"loc"`` and ``"mask_logits"`` ``(N, M, M)`` (optional when
            ``N == 0``).
        targets: from :func:`trainers.targets.anchor.siammask_targets`.
        geometry: unused beyond the shapes carried by the targets.
        params: ``smooth_l1_beta``.
        weights: ``cls``, ``loc`` and ``mask``.

    Returns:
        ``"cls"``, ``"loc"``, ``"mask"`` and their weighted ``"total"``.

    Raises:
        InvalidArgumentError: missing or misshapen outputs or targets.
    """
    components = rpn_components(outputs, targets, params=params)
    if "mask_targets" not in targets:
        raise InvalidArgumentError(
            f"SiamMask targets lack 'mask_targets'; they have {sorted(targets)}"
        )
    mask_targets = targets["mask_targets"]
    if mask_targets.shape[0] == 0 and "mask_logits" not in outputs:
        components["mask"] = outputs["cls"].float().sum() * 0.0
        return with_total(components, weights)
    logits = require(outputs, "mask_logits", tuple(mask_targets.shape), what="outputs").float()
    if mask_targets.shape[0] == 0:
        components["mask"] = logits.sum() * 0.0
    else:
        components["mask"] = F.binary_cross_entropy_with_logits(logits, mask_targets.float())
    return with_total(components, weights)
