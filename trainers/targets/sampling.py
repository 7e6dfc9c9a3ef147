"""Capped random subsampling of labelled anchors, vectorised over the batch.

PySOT keeps at most ``POS_NUM`` positive anchors per pair (and at most ``TOTAL_NUM`` minus
the positives as negatives), chosen uniformly at random among the candidates. Here the
choice ranks uniform random keys per row and keeps the candidates ranked below the cap, so
one call handles every pair at once and depends only on the generator's state.
"""

from __future__ import annotations

import torch


def sample_capped(
    candidates: torch.Tensor,
    cap: int | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Keep at most ``cap`` randomly chosen candidates in each row.

    Rows with no more than ``cap`` candidates keep all of them. The random keys are drawn
    on the generator's device (CPU when ``generator`` is ``None`` and the candidates are on
    CPU) and always for the whole ``(B, K)`` shape, so the generator advances by the same
    amount whatever the candidates are.

    Args:
        candidates: ``(B, K)`` bool.
        cap: maximum kept per row, an int or a ``(B,)`` int64 tensor (negative counts as 0).
        generator: source of randomness.

    Returns:
        ``(B, K)`` bool, a subset of ``candidates``.
    """
    rows, num = candidates.shape
    device = candidates.device
    rand_device = generator.device if generator is not None else device
    keys = torch.rand((rows, num), generator=generator, device=rand_device).to(device)
    keys = torch.where(candidates, keys, torch.full_like(keys, 2.0))
    order = keys.argsort(dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(num, device=device).expand(rows, num).contiguous())
    cap_t = torch.as_tensor(cap, device=device).reshape(-1, 1)
    return candidates & (ranks < cap_t)
