"""SiamFC++'s trackers: video_analyst's ``SiamFCppTracker`` and ``SiamFCppOneShotDetector``.

The template is a ``exemplar_size`` crop of side ``s_z = sqrt((w + p)(h + p))``
(``p = context * (w + h)``) around the target; each search crop covers
``instance_size / scale`` image pixels (``scale = exemplar_size / s_z``) around the last
position. Crops are taken with ``cv2.warpAffine`` (bilinear, sub-pixel placement, the
init frame's channel means, truncated to integers, outside the image). Every score cell
predicts a box in the crop; its score ``sigmoid(cls) * sigmoid(ctr)`` is multiplied by
the size/ratio-change penalty against the previous size, blended with a cosine window,
and the arg-max cell gives the new centre (not damped) and, at rate
``penalty * score * lr``, the new size; the result is clamped to the frame.

The one-shot detector (``siamfcpp_osdet``) is the same search without the window, the
smoothing (its size is the predicted box's) and the clamp, and it reports the chosen
box in the crop as floats.

Shape shorthand / naming: ``S`` is the score map side; video_analyst's vocabulary is kept
for parity: ``target_pos`` ``(cx, cy)`` and ``target_sz`` ``(w, h)``, in the 0-based
pixel-inclusive convention (``cx = x + (w - 1) / 2``) and, as in the original, float32;
``scale_x`` is crop pixels per image pixel. The float32 arithmetic (including the
original's ``np.float32(scale_x)`` cast) is what makes the crops and boxes identical to
the original's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from matcher.images import Box
from matcher.inference.anchors import cosine_window, size_ratio_penalty
from matcher.inference.point_decoder import point_boxes, point_scores
from matcher.inference.tracking import TRACKERS, Tracker, crops_to_tensor
from matcher.structures import Instance


@dataclass
class SiamFCppState:
    """``target_pos`` ``(cx, cy)`` and ``target_sz`` ``(w, h)``, float32 arrays."""

    target_pos: np.ndarray
    target_sz: np.ndarray


@dataclass(frozen=True, eq=False)
class SiamFCppStep:
    """Everything one SiamFC++ update computed.

    Attributes:
        x_crop: search crop, ``(X, X, 3)`` uint8 in the network's channel order.
        scale_x: crop pixels per image pixel (float32).
        outputs: raw head outputs (``cls``, ``ctr``, ``offsets``), batch of one.
        score: ``sigmoid(cls) * sigmoid(ctr)`` per cell, ``(S*S,)`` float32.
        cls_prob / ctr_prob: the two factors, ``(S*S,)`` float32.
        all_box: ``(S*S, 4)`` float32 xyxy boxes in crop pixels.
        penalty: size/ratio-change penalty per cell, float32.
        pscore: the array whose arg-max is taken (float64 with the window, float32
            without).
        best_idx: chosen cell (row-major).
        bbox_pred_in_crop: the chosen box in the crop (rounded to integers by the tracker,
            float for the one-shot detector).
        rect_xywh: returned box ``(x, y, w, h)`` (float32).
        instance: the public result (score = ``score[best_idx]``).
    """

    x_crop: np.ndarray
    scale_x: np.float32
    outputs: dict[str, torch.Tensor]
    score: np.ndarray
    cls_prob: np.ndarray
    ctr_prob: np.ndarray
    all_box: np.ndarray
    penalty: np.ndarray
    pscore: np.ndarray
    best_idx: int
    bbox_pred_in_crop: np.ndarray
    rect_xywh: np.ndarray
    instance: Instance


@dataclass(frozen=True)
class SiamFCppTrackParams:
    """Hyper-parameters (see ``TrackConfig``; ``score_size``/``score_offset`` derived)."""

    exemplar_size: int
    instance_size: int
    stride: int
    score_size: int
    score_offset: float
    context_amount: float
    penalty_k: float
    window_influence: float
    lr: float
    min_size: float = 10.0


def xywh_to_target(x: float, y: float, w: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """0-based ``(x, y, w, h)`` -> float32 ``target_pos``, ``target_sz`` (``cx = x + (w-1)/2``)."""
    rect = np.array([x, y, w, h], dtype=np.float32)
    pos = rect[:2] + (rect[2:] - 1) / 2
    return pos, rect[2:].copy()


def target_to_xywh(pos: np.ndarray, size: np.ndarray) -> np.ndarray:
    """float32 ``target_pos``, ``target_sz`` -> ``(x, y, w, h)`` float32."""
    pos, size = np.asarray(pos, np.float32), np.asarray(size, np.float32)
    return np.concatenate([pos - (size - 1) / 2, size])


def crop_scale(target_sz: np.ndarray, *, exemplar_size: int, context_amount: float) -> np.float32:
    """Template pixels per image pixel for a target of size ``target_sz`` (float32)."""
    w, h = target_sz[0], target_sz[1]
    context = context_amount * (w + h)
    return exemplar_size / np.sqrt((w + context) * (h + context))


def warp_subwindow(
    image: np.ndarray,
    center: np.ndarray,
    out_size: int,
    side: int,
    avg_chans: np.ndarray,
) -> np.ndarray:
    """Square of ``side`` image pixels centred on ``center``, resampled to ``out_size``.

    Output pixels ``0 .. out_size - 1`` map linearly onto image coordinates
    ``center - (side - 1) / 2 .. center + (side - 1) / 2`` (float32), bilinear; pixels
    outside the image take ``avg_chans`` truncated to integers.

    Args:
        image: ``(H, W, 3)`` uint8.
        center: float32 ``(cx, cy)``.
        out_size: output side.
        side: side of the crop in the image (an integer).
        avg_chans: per-channel fill colour.

    Returns:
        ``(out_size, out_size, 3)`` uint8.
    """
    center = np.asarray(center, dtype=np.float32)
    half = (np.float32(side) - 1) / 2
    lo, hi = center - half, center + half
    step = (hi - lo) / (out_size - 1)
    matrix = np.array([[step[0], 0.0, lo[0]], [0.0, step[1], lo[1]]], dtype=np.float64)
    return cv2.warpAffine(
        image,
        matrix,
        (out_size, out_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(int(c) for c in avg_chans),
    )


class SiamFCppTracker(Tracker):
    """video_analyst's ``SiamFCppTracker`` on a :class:`~matcher.models.SiameseNet` with a
    SiamFC++ head.

    Args:
        net: the network.
        params: hyper-parameters.
        input_format / device: see :class:`~matcher.inference.tracking.Tracker`.
    """

    #: cosine window, size smoothing and clamping to the frame (off in the detector)
    tracking_prior = True

    def __init__(
        self, net: torch.nn.Module, params: SiamFCppTrackParams, *, input_format: str, device
    ) -> None:
        super().__init__(input_format=input_format, device=device)
        self.net = net
        self.params = params
        self.score_size = params.score_size
        self.window = cosine_window(params.score_size)
        self.state: SiamFCppState | None = None
        self.template: list[torch.Tensor] | None = None
        self.avg_chans: np.ndarray | None = None
        self.z_crop: np.ndarray | None = None

    def _init(self, image: np.ndarray, box: Box) -> None:
        p = self.params
        x0, y0, x1, y1 = box
        pos, size = xywh_to_target(x0, y0, x1 - x0, y1 - y0)
        self.state = SiamFCppState(target_pos=pos, target_sz=size)
        self.avg_chans = np.mean(image, axis=(0, 1))
        scale = crop_scale(size, exemplar_size=p.exemplar_size, context_amount=p.context_amount)
        side = round(p.exemplar_size / scale)
        self.z_crop = warp_subwindow(image, pos, p.exemplar_size, side, self.avg_chans)
        self.template = self.net.encode_template(crops_to_tensor(self.z_crop, self.device))

    def _step(self, image: np.ndarray) -> SiamFCppStep:
        p = self.params
        pos, size = self.state.target_pos, self.state.target_sz
        scale_x = crop_scale(size, exemplar_size=p.exemplar_size, context_amount=p.context_amount)
        side = round(p.instance_size / scale_x)
        x_crop = warp_subwindow(image, pos, p.instance_size, side, self.avg_chans)
        xk = self.net.encode_search(crops_to_tensor(x_crop, self.device))
        outputs = self.net.correlate(self.template, xk)
        cls_prob = torch.sigmoid(outputs["cls"]).reshape(-1).cpu().numpy()
        ctr_prob = torch.sigmoid(outputs["ctr"]).reshape(-1).cpu().numpy()
        score = point_scores(outputs["cls"], outputs["ctr"]).reshape(-1).cpu().numpy()
        box = point_boxes(outputs["offsets"], offset=p.score_offset, stride=p.stride)
        box = box[0].cpu().numpy()
        # centre/size form, pixel-inclusive widths (w = x1 - x0 + 1)
        box_w = box[:, 2] - box[:, 0] + 1
        box_h = box[:, 3] - box[:, 1] + 1
        size_in_crop = size * scale_x
        penalty = size_ratio_penalty(box_w, box_h, size_in_crop[0], size_in_crop[1], p.penalty_k)
        pscore = penalty * score
        if self.tracking_prior:
            pscore = pscore * (1 - p.window_influence) + self.window * p.window_influence
        best = int(np.argmax(pscore))
        scale32 = np.float32(scale_x)
        pred_cx = (box[best, 0] + box[best, 2]) / 2 / scale32
        pred_cy = (box[best, 1] + box[best, 3]) / 2 / scale32
        pred_w, pred_h = box_w[best] / scale32, box_h[best] / scale32
        lr = penalty[best] * score[best] * p.lr if self.tracking_prior else 1.0
        shift = (p.instance_size // 2) / scale_x
        new_pos = np.array([pred_cx + pos[0] - shift, pred_cy + pos[1] - shift])
        new_size = np.array([size[0] * (1 - lr) + pred_w * lr, size[1] * (1 - lr) + pred_h * lr])
        if self.tracking_prior:
            img_h, img_w = image.shape[:2]
            new_pos[0] = max(0, min(img_w, new_pos[0]))
            new_pos[1] = max(0, min(img_h, new_pos[1]))
            new_size[0] = max(p.min_size, min(img_w, new_size[0]))
            new_size[1] = max(p.min_size, min(img_h, new_size[1]))
            bbox_pred_in_crop = np.rint(box[best]).astype(np.int64)
        else:
            bbox_pred_in_crop = box[best].copy()
        self.state = SiamFCppState(target_pos=new_pos, target_sz=new_size)
        rect = target_to_xywh(new_pos, new_size)
        x, y, w, h = (float(v) for v in rect)
        instance = Instance(box=(x, y, x + w, y + h), score=float(score[best]))
        return SiamFCppStep(
            x_crop=x_crop,
            scale_x=scale_x,
            outputs=outputs,
            score=score,
            cls_prob=cls_prob,
            ctr_prob=ctr_prob,
            all_box=box,
            penalty=penalty,
            pscore=pscore,
            best_idx=best,
            bbox_pred_in_crop=bbox_pred_in_crop,
            rect_xywh=rect,
            instance=instance,
        )


class SiamFCppOneShotDetector(SiamFCppTracker):
    """video_analyst's ``SiamFCppOneShotDetector``: no window, no smoothing, no clamp."""

    tracking_prior = False


def _factory(cls: type[SiamFCppTracker]):
    def make(*, net, geometry, model_cfg, track_cfg, device) -> SiamFCppTracker:
        instance_size = track_cfg.instance_size or geometry.instance_size
        params = SiamFCppTrackParams(
            exemplar_size=geometry.exemplar_size,
            instance_size=instance_size,
            stride=geometry.stride,
            score_size=geometry.score_size_at(instance_size),
            score_offset=geometry.offset,
            context_amount=geometry.context_amount,
            penalty_k=track_cfg.penalty_k,
            window_influence=track_cfg.window_influence,
            lr=track_cfg.lr,
        )
        return cls(net, params, input_format=model_cfg.input_format, device=device)

    return make


TRACKERS.register("siamfcpp")(_factory(SiamFCppTracker))
TRACKERS.register("siamfcpp_osdet")(_factory(SiamFCppOneShotDetector))
