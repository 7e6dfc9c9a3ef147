"""SiamMask's tracker: PySOT's ``SiamMaskTracker`` (a SiamRPN tracker plus a mask).

The box update is exactly :class:`~matcher.inference.rpn_tracker.PySOTTracker`'s. Then
the mask is predicted at the chosen candidate's score cell (refine module, 127x127, or
the mask head, 63x63), passed through a sigmoid, warped from that cell's window of the
search crop back into the frame, thresholded, and the rotated rectangle around its
largest contour becomes the polygon (the axis-aligned box when no contour is larger than
100 pixels). As in the original, the tracker state comes from the box branch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from matcher.inference.da_tracker import DistractorAwareMixin, rpn_tracker_factory
from matcher.inference.rpn_tracker import PySOTTracker, RPNStep
from matcher.inference.siammask_masks import cell_window, paste_mask
from matcher.inference.tracking import TRACKERS
from matcher.mask_codec import largest_contour_polygon
from matcher.structures import Instance


@dataclass(frozen=True, eq=False)
class SiamMaskStep(RPNStep):
    """An :class:`RPNStep` plus the mask.

    Attributes:
        refine_pos: ``(row, col)`` score cell the mask was predicted at.
        mask_logits: ``(M, M)`` raw logits at that cell.
        mask_prob: ``(H, W)`` float32 probabilities in frame coordinates.
        polygon: ``(4, 2)`` corners (rotated rectangle or box fallback).
    """

    refine_pos: tuple[int, int] = (0, 0)
    mask_logits: torch.Tensor | None = None
    mask_prob: np.ndarray | None = None
    polygon: np.ndarray | None = None


class SiamMaskTracker(PySOTTracker):
    """PySOT's ``SiamMaskTracker`` on a :class:`~matcher.models.siammask.SiamMaskNet`.

    Args:
        mask_threshold: probability above which a pixel is the object.
        other arguments: see :class:`PySOTTracker`.
    """

    def __init__(self, net, params, *, mask_threshold: float, input_format: str, device):
        super().__init__(net, params, input_format=input_format, device=device)
        self.mask_threshold = mask_threshold

    def _step(self, image: np.ndarray) -> SiamMaskStep:
        p = self.params
        step, xk, center = self._rpn_step(image)
        side = step.crop_side
        crop_box = (center[0] - side / 2, center[1] - side / 2, side)
        _, row, col = np.unravel_index(
            step.best_idx, (len(p.anchor_shapes), self.score_size, self.score_size)
        )
        positions = torch.tensor([[0, int(row), int(col)]], dtype=torch.long)
        logits = self.net.mask_logits(self.template, xk, positions)[0]
        prob = torch.sigmoid(logits).cpu().numpy()
        window = cell_window(
            crop_box,
            int(row),
            int(col),
            instance_size=self.instance_size,
            exemplar_size=p.geometry.exemplar_size,
            stride=p.geometry.stride,
            base_size=p.geometry.base_size,
        )
        mask_prob = paste_mask(prob, window, image.shape[:2])
        binary = mask_prob > self.mask_threshold
        polygon = largest_contour_polygon(binary)
        if polygon is None:
            x, y, w, h = self._fallback_rect()
            polygon = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        instance = Instance(
            box=step.instance.box,
            score=step.instance.score,
            mask=binary,
            polygon=tuple((float(px), float(py)) for px, py in polygon),
        )
        fields = {f: getattr(step, f) for f in RPNStep.__dataclass_fields__}
        fields["instance"] = instance
        return SiamMaskStep(
            **fields,
            refine_pos=(int(row), int(col)),
            mask_logits=logits,
            mask_prob=mask_prob,
            polygon=polygon,
        )

    def _fallback_rect(self) -> tuple[float, float, float, float]:
        """PySOT's ``cxy_wh_2_rect`` of the updated state."""
        cx, cy = self.state.center
        w, h = self.state.size
        return (cx - w / 2, cy - h / 2, w, h)


class DistractorAwareSiamMaskTracker(DistractorAwareMixin, SiamMaskTracker):
    """:class:`SiamMaskTracker` with distractor awareness."""


TRACKERS.register("siammask")(
    rpn_tracker_factory(
        SiamMaskTracker, DistractorAwareSiamMaskTracker, mask_threshold="mask_threshold"
    )
)
