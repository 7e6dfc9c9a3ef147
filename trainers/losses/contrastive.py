"""The contrastive loss that trains the catalog embedder (:mod:`matcher.embedder`).

:func:`info_nce` is the symmetric InfoNCE over in-batch negatives: two views of each
product make a positive pair, the other products of the batch its negatives. It is not a
recipe family's loss (those are in :data:`trainers.losses.LOSSES`); the embedder's training
(:mod:`trainers.embedder`) calls it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, *, temperature: float = 0.07) -> torch.Tensor:
    """Symmetric InfoNCE over in-batch negatives.

    Row ``i`` of ``a`` and row ``i`` of ``b`` are two views of the same product (a
    positive pair); every other row of the other side is a negative. The loss is the mean
    of the cross-entropies of ``a -> b`` and ``b -> a`` over cosine similarities divided by
    ``temperature``. Inputs are L2-normalised here, so raw projections work too.

    Args:
        a: ``(N, D)`` float.
        b: ``(N, D)`` float.
        temperature: softmax temperature, > 0.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: shapes differ, are not 2-D, ``N < 2`` or ``temperature <= 0``.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"info_nce needs two (N, D) tensors of one shape, got {a.shape}, {b.shape}"
        )
    if a.shape[0] < 2:
        raise ValueError("info_nce needs at least two pairs (the negatives are the other pairs)")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
