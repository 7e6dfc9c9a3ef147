"""Distractor-aware tracking for the RPN family (DaSiamRPN), and the registrations of
PySOT's and DaSiamRPN's trackers (SiamMask's registers in its own module).

:class:`DistractorAwareMixin` adds to any RPN tracker (PySOT, DaSiamRPN, SiamMask):

* **distractor-aware re-scoring** — after each pick, the search region's secondary peaks
  (NMS'ed candidates scoring above ``distractor_threshold``, neither centred on the pick
  nor overlapping it)
  are cropped from the frame as templates and remembered with their scores as weights,
  decaying by ``distractor_decay`` per frame; every candidate is then picked by
  ``score - distractor_weight * sum_i w_i s_i / sum_i w_i``, where ``s_i`` is the
  network's score for distractor template ``i`` on the same search region. A remembered
  distractor matches its own template best and is suppressed; the target is not.
* **local-to-global re-detection** — when the picked score falls below
  ``redetect_threshold`` the state is kept, the window is relaxed to
  ``lost_window_influence``, and the search region grows by ``redetect_step`` pixels of
  network input per lost frame (same resolution, wider view) up to
  ``lost_instance_size``; a confident pick brings it back to normal.

With ``distractor_aware: false`` (every recipe's default) the trackers are exactly the
originals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou, nms

from matcher.crops import subwindow
from matcher.inference import anchors as anc
from matcher.inference.distractors import DistractorMemory, weighted_distractor_score
from matcher.inference.rpn_tracker import (
    DaSiamRPNTracker,
    PySOTTracker,
    RPNState,
    foreground_probability,
    tracker_params,
)
from matcher.inference.tracking import TRACKERS, crops_to_tensor


@dataclass(frozen=True)
class DistractorParams:
    """Distractor-aware settings (see ``TrackConfig``)."""

    weight: float
    threshold: float
    per_frame: int
    memory: int
    decay: float
    redetect_threshold: float
    redetect_step: int
    lost_instance_size: int
    lost_window_influence: float


class DistractorAwareMixin:
    """Distractor memory and re-detection for :class:`PySOTTracker` subclasses."""

    da: DistractorParams

    def __init__(self, *args, distractors: DistractorParams, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.da = distractors
        self._reset_distractors()

    def _reset_distractors(self) -> None:
        """An empty memory, no lost frames, the tracker's own search size as the base."""
        self.memory = DistractorMemory(capacity=self.da.memory, decay=self.da.decay)
        self.lost_frames = 0
        self._base_instance_size = self.instance_size

    def _on_init(self, image: np.ndarray) -> None:
        super()._on_init(image)  # type: ignore[misc]
        self._reset_distractors()

    def _prepare_step(self, image: np.ndarray) -> None:
        base, stride = self._base_instance_size, self.params.geometry.stride
        grow = min(self.lost_frames * self.da.redetect_step, self.da.lost_instance_size - base)
        size = base + max(0, grow) // stride * stride
        if size != self.instance_size:
            self._set_geometry(size)

    def _window_influence(self) -> float:
        if self.lost_frames > 0:
            return self.da.lost_window_influence
        return self.params.window_influence

    def _rescore(self, score: np.ndarray, xk: list[torch.Tensor]) -> np.ndarray:
        if len(self.memory) == 0:
            return score
        cls = self.net.correlate(self.memory.templates, xk)["cls"]
        similarity = foreground_probability(cls)
        penalty = weighted_distractor_score(similarity, self.memory.weights)
        return np.maximum(score - self.da.weight * penalty, 0.0).astype(np.float32)

    def _observe(self, image, pred, score, picking, best, scale_z, state: RPNState) -> bool:
        # A pick is trusted by its distractor-aware score: a remembered distractor scores
        # high for the network but low here, and must not pull the tracker away.
        confident = bool(picking[best] >= self.da.redetect_threshold)
        self.lost_frames = 0 if confident else self.lost_frames + 1
        self.memory.age()
        if confident:
            self._remember_distractors(image, pred, score, best, scale_z, state)
        return confident

    def _remember_distractors(self, image, pred, score, best, scale_z, state) -> None:
        cx = pred[0] / scale_z + state.center[0]
        cy = pred[1] / scale_z + state.center[1]
        w, h = pred[2] / scale_z, pred[3] / scale_z
        with np.errstate(over="ignore", invalid="ignore"):
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        ok = np.isfinite(boxes).all(axis=1) & (score >= self.da.threshold) & (w > 1) & (h > 1)
        # Distractors are other objects: nothing centred on the pick or overlapping it.
        bx0, by0, bx1, by1 = boxes[best]
        on_target = (cx >= bx0) & (cx <= bx1) & (cy >= by0) & (cy <= by1)
        ok &= ~on_target
        index = np.nonzero(ok)[0]
        if len(index) == 0:
            return
        boxes_t = torch.as_tensor(boxes[index], dtype=torch.float32)
        away = box_iou(boxes_t, torch.as_tensor(boxes[best : best + 1], dtype=torch.float32))
        index = index[(away[:, 0] <= 0.1).numpy()]
        if len(index) == 0:
            return
        boxes_t = torch.as_tensor(boxes[index], dtype=torch.float32)
        keep = nms(boxes_t, torch.as_tensor(score[index], dtype=torch.float32), 0.3)
        chosen = index[keep.numpy()][: self.da.per_frame]
        crops = []
        for i in chosen:
            size = np.array([w[i], h[i]], dtype=np.float64)
            s_z = self._round(self._template_side(size))
            crops.append(
                subwindow(
                    image,
                    np.array([cx[i], cy[i]]),
                    self.params.geometry.exemplar_size,
                    max(1, s_z),
                    self.channel_average,
                    corner_round=self.corner_round,
                )
            )
        templates = self.net.encode_template(crops_to_tensor(crops, self.device))
        self.memory.add(templates, score[chosen])


class DistractorAwarePySOTTracker(DistractorAwareMixin, PySOTTracker):
    """:class:`PySOTTracker` with distractor awareness."""


class DistractorAwareDaSiamRPNTracker(DistractorAwareMixin, DaSiamRPNTracker):
    """:class:`DaSiamRPNTracker` with distractor awareness."""


def distractor_params(track_cfg) -> DistractorParams:
    """:class:`DistractorParams` from a recipe's ``inference.track``."""
    return DistractorParams(
        weight=track_cfg.distractor_weight,
        threshold=track_cfg.distractor_threshold,
        per_frame=track_cfg.distractor_per_frame,
        memory=track_cfg.distractor_memory,
        decay=track_cfg.distractor_decay,
        redetect_threshold=track_cfg.redetect_threshold,
        redetect_step=track_cfg.redetect_step,
        lost_instance_size=track_cfg.lost_instance_size,
        lost_window_influence=track_cfg.lost_window_influence,
    )


def rpn_tracker_factory(plain: type[PySOTTracker], aware: type[PySOTTracker], **extra_keys: str):
    """The registry entry of an RPN tracker: ``plain``, or ``aware`` when the recipe turns
    distractor awareness on; ``extra_keys`` maps constructor arguments to
    ``inference.track`` fields."""

    def make(*, net, geometry, model_cfg, track_cfg, device) -> PySOTTracker:
        anchor = model_cfg.anchor
        shapes = anc.anchor_shapes(geometry.stride, anchor.ratios, anchor.scales)
        kwargs = {name: getattr(track_cfg, key) for name, key in extra_keys.items()}
        if track_cfg.distractor_aware:
            kwargs["distractors"] = distractor_params(track_cfg)
        cls = aware if track_cfg.distractor_aware else plain
        return cls(
            net,
            tracker_params(geometry, track_cfg, shapes),
            input_format=model_cfg.input_format,
            device=device,
            **kwargs,
        )

    return make


TRACKERS.register("pysot_rpn")(rpn_tracker_factory(PySOTTracker, DistractorAwarePySOTTracker))
TRACKERS.register("dasiamrpn")(
    rpn_tracker_factory(DaSiamRPNTracker, DistractorAwareDaSiamRPNTracker)
)
