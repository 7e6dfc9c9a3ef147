"""Match-mode decoders: score maps of a whole pyramid -> candidate boxes in the scene.

The search engine stitches each level's raw head outputs into full-level maps (see
:class:`LevelOutputs`), so a decoder sees all of a reference's levels at once and needs no
tiling logic. It returns that reference's candidate boxes ``(N, 4)`` float32 xyxy in scene
pixels with scores in ``[0, 1]``; the engine clips, de-duplicates (NMS) and caps them.

* :class:`AnchorDecoder` (SiamRPN family): every anchor whose foreground probability
  passes the threshold is regressed into a box; its score is the probability times the
  tracker's size/ratio-change penalty relative to the reference's size at that level.
* :class:`ResponseDecoder` (SiamFC family): local maxima of ``sigmoid(response)``; the
  position is refined to sub-cell precision by a parabola through the neighbouring cells
  and the scale by a parabola through the same point on the neighbouring levels, and the
  box is the reference's box at that scale.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from matcher.inference.anchors import size_ratio_penalty


@dataclass(frozen=True, eq=False)
class LevelOutputs:
    """Raw head outputs of one pyramid level, stitched over its tiles.

    Attributes:
        scale: level pixels per scene pixel.
        pad: left/top padding of the level, level pixels.
        offset / stride: cell ``(gy, gx)`` is centred at padded-level pixel
            ``(offset + stride * gy, offset + stride * gx)``.
        outputs: name -> ``(K, C, Gy, Gx)`` (one row per reference).
        covered: ``(Gy, Gx)`` bool, cells some tile reported.
    """

    scale: float
    pad: int
    offset: float
    stride: int
    outputs: dict[str, torch.Tensor]
    covered: torch.Tensor

    def cell_centers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene-pixel x (Gx,) and y (Gy,) of the cell centres."""
        gy, gx = self.covered.shape
        xs = self.offset + self.stride * torch.arange(gx, dtype=torch.float32) - self.pad
        ys = self.offset + self.stride * torch.arange(gy, dtype=torch.float32) - self.pad
        return xs / self.scale, ys / self.scale


@dataclass(frozen=True)
class ReferenceGeometry:
    """A reference's product size in template pixels, ``(w, h)``."""

    width: float
    height: float


Candidates = tuple[np.ndarray, np.ndarray]


class MatchDecoder(ABC):
    """Turns stitched level outputs into one reference's candidates."""

    @abstractmethod
    def decode(
        self,
        levels: list[LevelOutputs],
        row: int,
        ref: ReferenceGeometry,
        *,
        threshold: float,
        top_k: int,
    ) -> Candidates:
        """Candidates of the reference in output row ``row``.

        Args:
            levels: the levels searched for this reference, largest scale first.
            row: the reference's row in each level's outputs.
            ref: its product size in template pixels.
            threshold: minimum score.
            top_k: most candidates kept per level.

        Returns:
            ``(boxes (N, 4) float32 xyxy in scene pixels, scores (N,) float32)``.
        """


class AnchorDecoder(MatchDecoder):
    """Decoder of RPN heads (``cls``/``loc`` outputs, PySOT layout).

    Args:
        anchor_shapes: ``(A, 2)`` anchor ``(w, h)``.
        penalty_k: strength of the size/ratio-change penalty.
    """

    def __init__(self, *, anchor_shapes: np.ndarray, penalty_k: float) -> None:
        self.anchor_shapes = torch.as_tensor(anchor_shapes, dtype=torch.float32)
        self.penalty_k = penalty_k

    def decode(self, levels, row, ref, *, threshold, top_k):
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        num_a = len(self.anchor_shapes)
        for lv in levels:
            cls = lv.outputs["cls"][row].float()
            loc = lv.outputs["loc"][row].float()
            _, gy, gx = cls.shape
            prob = torch.softmax(cls.reshape(2, num_a, gy, gx), dim=0)[1]
            flat = (prob * lv.covered.to(prob.dtype)).reshape(-1)
            sel = torch.nonzero(flat >= threshold).squeeze(1)
            if sel.numel() == 0:
                continue
            if sel.numel() > 4 * top_k:
                sel = sel[torch.topk(flat[sel], 4 * top_k).indices]
            a, yy, xx = sel // (gy * gx), (sel // gx) % gy, sel % gx
            aw, ah = self.anchor_shapes[a, 0], self.anchor_shapes[a, 1]
            d = loc.reshape(4, num_a, gy, gx)[:, a, yy, xx]
            cx = d[0] * aw + self._padded(lv, gx)[xx]
            cy = d[1] * ah + self._padded(lv, gy)[yy]
            w, h = torch.exp(d[2]) * aw, torch.exp(d[3]) * ah
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                penalty = size_ratio_penalty(
                    w.numpy(), h.numpy(), ref.width, ref.height, self.penalty_k
                )
                penalty = np.nan_to_num(penalty, nan=0.0)
            scores = flat[sel].numpy() * penalty
            keep = np.argsort(-scores, kind="stable")[:top_k]
            boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
            boxes = ((boxes - lv.pad) / lv.scale).numpy()
            chunks.append((boxes[keep], scores[keep]))
        return _concat(chunks)

    @staticmethod
    def _padded(lv: LevelOutputs, n: int) -> torch.Tensor:
        return lv.offset + lv.stride * torch.arange(n, dtype=torch.float32)


class ResponseDecoder(MatchDecoder):
    """Decoder of SiamFC responses (``response`` output, logits)."""

    def decode(self, levels, row, ref, *, threshold, top_k):
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        for li, lv in enumerate(levels):
            resp = lv.outputs["response"][row, 0].float()
            masked = resp.masked_fill(~lv.covered, -math.inf)
            pooled = F.max_pool2d(masked[None, None], 3, stride=1, padding=1)[0, 0]
            is_peak = (masked == pooled) & lv.covered & (torch.sigmoid(resp) >= threshold)
            peaks = torch.nonzero(is_peak)
            if peaks.numel() == 0:
                continue
            scores = torch.sigmoid(resp[peaks[:, 0], peaks[:, 1]])
            order = torch.argsort(scores, descending=True, stable=True)[:top_k]
            peaks, scores = peaks[order], scores[order]
            boxes = []
            for yy, xx in peaks.tolist():
                fy = yy + _subcell(resp[:, xx], yy)
                fx = xx + _subcell(resp[yy, :], xx)
                cx = (lv.offset + lv.stride * fx - lv.pad) / lv.scale
                cy = (lv.offset + lv.stride * fy - lv.pad) / lv.scale
                scale = math.exp(math.log(lv.scale) + self._scale_shift(levels, li, row, cx, cy))
                w, h = ref.width / scale, ref.height / scale
                boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            chunks.append((np.asarray(boxes, dtype=np.float32), scores.numpy().astype(np.float32)))
        return _concat(chunks)

    @staticmethod
    def _scale_shift(levels, li, row, sx, sy) -> float:
        """Log-scale offset of the response peak across levels ``li - 1 .. li + 1``."""
        if li == 0 or li == len(levels) - 1:
            return 0.0
        above = math.log(levels[li - 1].scale) - math.log(levels[li].scale)
        below = math.log(levels[li].scale) - math.log(levels[li + 1].scale)
        if not math.isclose(above, below, rel_tol=1e-6):
            return 0.0  # a coarse-to-fine search skipped a level on one side
        vals = [_sample(levels[j], row, sx, sy) for j in (li - 1, li, li + 1)]
        if any(v is None for v in vals):
            return 0.0
        lo, mid, hi = vals
        denom = lo - 2 * mid + hi
        if denom >= 0:
            return 0.0
        # Levels are spaced evenly in log-scale, largest scale first.
        t = 0.5 * (lo - hi) / denom  # in units of one level, towards index li + 1
        t = max(-0.5, min(0.5, t))
        step = math.log(levels[li].scale) - math.log(levels[li + 1].scale)
        return -t * step


def _subcell(line: torch.Tensor, i: int) -> float:
    """Parabolic sub-cell offset of a peak at ``i`` on a 1-D response."""
    if i <= 0 or i >= line.numel() - 1:
        return 0.0
    a, b, c = (float(v) for v in line[i - 1 : i + 2])
    if not all(math.isfinite(v) for v in (a, b, c)):
        return 0.0
    denom = a - 2 * b + c
    if denom >= 0:
        return 0.0
    return max(-0.5, min(0.5, 0.5 * (a - c) / denom))


def _sample(lv: LevelOutputs, row: int, sx: float, sy: float) -> float | None:
    """Bilinear sample of a level's response at a scene point (``None`` off the map)."""
    resp = lv.outputs["response"][row, 0]
    gx = (sx * lv.scale + lv.pad - lv.offset) / lv.stride
    gy = (sy * lv.scale + lv.pad - lv.offset) / lv.stride
    h, w = resp.shape
    if not (0 <= gx <= w - 1 and 0 <= gy <= h - 1):
        return None
    x0, y0 = min(int(gx), w - 2) if w > 1 else 0, min(int(gy), h - 2) if h > 1 else 0
    fx, fy = gx - x0, gy - y0
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    if not bool(lv.covered[y0, x0] and lv.covered[y1, x1]):
        return None
    top = float(resp[y0, x0]) * (1 - fx) + float(resp[y0, x1]) * fx
    bottom = float(resp[y1, x0]) * (1 - fx) + float(resp[y1, x1]) * fx
    return top * (1 - fy) + bottom * fy


def _concat(chunks: list[tuple[np.ndarray, np.ndarray]]) -> Candidates:
    if not chunks:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    boxes = np.concatenate([c[0] for c in chunks]).astype(np.float32)
    scores = np.concatenate([c[1] for c in chunks]).astype(np.float32)
    return boxes, scores
