"""Match-mode decoder of SiamFC++'s anchor-free head: one candidate box per score cell.

Each cell ``(gy, gx)`` of a level predicts the product's presence
(``sigmoid(cls) * sigmoid(ctr)``, classification times centre-ness, as SiamFC++ scores
its points) and the distances ``(l, t, r, b)`` from the cell's centre to the box's edges.
Cells whose score passes the threshold become candidates; as in the tracker, the score is
then multiplied by the size/ratio-change penalty relative to the reference's size at that
level (:func:`~matcher.inference.anchors.size_ratio_penalty`), and boxes are mapped from
padded-level pixels to scene pixels.

:func:`point_boxes` (cell centres minus/plus the offsets) is shared with the tracker.
"""

from __future__ import annotations

import numpy as np
import torch

from matcher.inference.anchors import size_ratio_penalty
from matcher.inference.decode import Candidates, LevelOutputs, MatchDecoder, ReferenceGeometry


def cell_centers(size: int, *, offset: float, stride: int) -> torch.Tensor:
    """Input-pixel coordinates of cells ``0 .. size - 1``: ``offset + stride * j``, float32."""
    return offset + stride * torch.arange(size, dtype=torch.float32)


def point_boxes(offsets: torch.Tensor, *, offset: float, stride: int) -> torch.Tensor:
    """Boxes of every cell from its ``(l, t, r, b)`` distances.

    Args:
        offsets: ``(N, 4, H, W)`` float32 distances in input pixels.
        offset: input coordinate of cell 0's centre.
        stride: cell spacing in input pixels.

    Returns:
        ``(N, H * W, 4)`` float32 xyxy in input pixels, row-major over cells
        (index ``gy * W + gx``).
    """
    n, _, h, w = offsets.shape
    xs = cell_centers(w, offset=offset, stride=stride).to(offsets.device)
    ys = cell_centers(h, offset=offset, stride=stride).to(offsets.device)
    cx = xs[None, :].expand(h, w).reshape(-1)
    cy = ys[:, None].expand(h, w).reshape(-1)
    ltrb = offsets.reshape(n, 4, h * w)
    return torch.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], dim=-1)


def point_scores(cls: torch.Tensor, ctr: torch.Tensor) -> torch.Tensor:
    """SiamFC++'s score: ``sigmoid(cls) * sigmoid(ctr)`` (same shape as the inputs)."""
    return torch.sigmoid(cls) * torch.sigmoid(ctr)


class PointDecoder(MatchDecoder):
    """Decoder of SiamFC++ heads (``cls``, ``ctr``, ``offsets`` outputs).

    Args:
        penalty_k: strength of the size/ratio-change penalty (0 disables it).
    """

    def __init__(self, *, penalty_k: float) -> None:
        self.penalty_k = penalty_k

    def decode(
        self,
        levels: list[LevelOutputs],
        row: int,
        ref: ReferenceGeometry,
        *,
        threshold: float,
        top_k: int,
    ) -> Candidates:
        """See :meth:`MatchDecoder.decode`."""
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        for lv in levels:
            score = point_scores(
                lv.outputs["cls"][row, 0].float(), lv.outputs["ctr"][row, 0].float()
            )
            gy, gx = score.shape
            flat = (score * lv.covered.to(score.dtype)).reshape(-1)
            sel = torch.nonzero(flat >= threshold).squeeze(1)
            if sel.numel() == 0:
                continue
            if sel.numel() > 4 * top_k:
                sel = sel[torch.topk(flat[sel], 4 * top_k).indices]
            ltrb = lv.outputs["offsets"][row].float().reshape(4, -1)[:, sel]
            cx = cell_centers(gx, offset=lv.offset, stride=lv.stride)[sel % gx]
            cy = cell_centers(gy, offset=lv.offset, stride=lv.stride)[sel // gx]
            boxes = torch.stack([cx - ltrb[0], cy - ltrb[1], cx + ltrb[2], cy + ltrb[3]], dim=1)
            w, h = (ltrb[0] + ltrb[2]).numpy(), (ltrb[1] + ltrb[3]).numpy()
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                penalty = size_ratio_penalty(w, h, ref.width, ref.height, self.penalty_k)
                penalty = np.nan_to_num(penalty, nan=0.0)
            scores = flat[sel].numpy() * penalty
            keep = np.argsort(-scores, kind="stable")[:top_k]
            boxes = ((boxes - lv.pad) / lv.scale).numpy()
            chunks.append((boxes[keep], scores[keep]))
        return _concat(chunks)


def _concat(chunks: list[tuple[np.ndarray, np.ndarray]]) -> Candidates:
    if not chunks:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    boxes = np.concatenate([c[0] for c in chunks]).astype(np.float32)
    scores = np.concatenate([c[1] for c in chunks]).astype(np.float32)
    return boxes, scores
