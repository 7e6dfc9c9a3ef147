"""SiamFC's tracker (siamfc-pytorch ``TrackerSiamFC``, the SiamFC-3s hyper-parameters).

The search runs at ``scale_num`` scales ``scale_step ** k`` around the last position. Each
17x17 response is upsampled bicubically ``response_up`` times, off-centre scales are
multiplied by ``scale_penalty``, the scale with the highest peak wins, its map is
normalised to sum 1, blended with a normalised Hanning window, and the arg-max gives the
displacement. Target size and crop sizes then move towards the chosen scale at rate
``scale_lr``.

State is kept in the original's float32 ``(cy, cx)`` / ``(h, w)`` arrays and its float
dtypes, which is what makes the crops identical to the original's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from matcher.crops import siamfc_crop
from matcher.images import Box
from matcher.inference.tracking import TRACKERS, Tracker, crops_to_tensor
from matcher.structures import Instance


@dataclass
class SiamFCState:
    """``center_yx`` and ``target_sz_hw`` (float32 arrays), template and search sides."""

    center_yx: np.ndarray
    target_sz_hw: np.ndarray
    z_sz: float
    x_sz: float


@dataclass(frozen=True, eq=False)
class SiamFCStep:
    """Everything one SiamFC update computed.

    Attributes:
        x_crops: ``(scale_num, X, X, 3)`` uint8 search crops.
        responses: ``(scale_num, 1, S, S)`` raw head outputs.
        upsampled_peaks: peak of each upsampled, scale-penalised response.
        scale_id: chosen scale.
        peak_loc_yx: arg-max in the final upsampled map.
        response_up: the chosen scale's upsampled, penalised map (before normalisation).
        box_ltwh_1based: siamfc-pytorch's return value.
        instance: the public result (score = sigmoid of the chosen peak).
    """

    x_crops: np.ndarray
    responses: torch.Tensor
    upsampled_peaks: np.ndarray
    scale_id: int
    peak_loc_yx: tuple[int, int]
    response_up: np.ndarray
    box_ltwh_1based: np.ndarray
    instance: Instance


@dataclass(frozen=True)
class SiamFCTrackParams:
    """Hyper-parameters (see ``TrackConfig``)."""

    exemplar_size: int
    instance_size: int
    context_amount: float
    stride: int
    score_size: int
    scale_num: int
    scale_step: float
    scale_penalty: float
    scale_lr: float
    window_influence: float
    response_up: int


class SiamFCTracker(Tracker):
    """siamfc-pytorch's tracker on a :class:`~matcher.models.SiameseNet` with a SiamFC head.

    Args:
        net: the network.
        params: hyper-parameters.
        input_format / device: see :class:`~matcher.inference.tracking.Tracker`.
    """

    def __init__(
        self, net: torch.nn.Module, params: SiamFCTrackParams, *, input_format: str, device
    ) -> None:
        super().__init__(input_format=input_format, device=device)
        self.net = net
        self.params = params
        p = params
        self.upscale_sz = p.response_up * p.score_size
        window = np.outer(np.hanning(self.upscale_sz), np.hanning(self.upscale_sz))
        self.hann_window = window / window.sum()
        self.scale_factors = p.scale_step ** np.linspace(
            -(p.scale_num // 2), p.scale_num // 2, p.scale_num
        )
        self.state: SiamFCState | None = None

    def _init(self, image: np.ndarray, box: Box) -> None:
        p = self.params
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        left1, top1 = x0 + 1.0, y0 + 1.0  # the original works on 1-based boxes
        yxhw = np.array([top1 - 1 + (h - 1) / 2, left1 - 1 + (w - 1) / 2, h, w], dtype=np.float32)
        center, target_sz = yxhw[:2], yxhw[2:]
        context = p.context_amount * np.sum(target_sz)
        z_sz = np.sqrt(np.prod(target_sz + context))
        x_sz = z_sz * p.instance_size / p.exemplar_size
        self.state = SiamFCState(center_yx=center, target_sz_hw=target_sz, z_sz=z_sz, x_sz=x_sz)
        self.avg_color = np.mean(image, axis=(0, 1))
        self.z_crop = siamfc_crop(image, center, z_sz, p.exemplar_size, self.avg_color)
        self.template = self.net.encode_template(crops_to_tensor(self.z_crop, self.device))

    def _step(self, image: np.ndarray) -> SiamFCStep:
        p = self.params
        st = self.state
        crops = np.stack(
            [
                siamfc_crop(image, st.center_yx, st.x_sz * f, p.instance_size, self.avg_color)
                for f in self.scale_factors
            ]
        )
        xk = self.net.encode_search(crops_to_tensor(crops, self.device))
        responses_t = self.net.correlate(self.template, xk)["response"]
        responses = responses_t.squeeze(1).cpu().numpy()
        up = np.stack(
            [
                cv2.resize(r, (self.upscale_sz, self.upscale_sz), interpolation=cv2.INTER_CUBIC)
                for r in responses
            ]
        )
        half = p.scale_num // 2
        up[:half] *= p.scale_penalty
        up[half + 1 :] *= p.scale_penalty
        peaks = np.amax(up, axis=(1, 2))
        scale_id = int(np.argmax(peaks))
        chosen = up[scale_id].copy()
        response = up[scale_id]
        response -= response.min()
        response /= response.sum() + 1e-16
        response = (1 - p.window_influence) * response + p.window_influence * self.hann_window
        loc = np.unravel_index(response.argmax(), response.shape)
        disp_response = np.array(loc) - (self.upscale_sz - 1) / 2
        disp_instance = disp_response * p.stride / p.response_up
        disp_image = disp_instance * st.x_sz * self.scale_factors[scale_id] / p.instance_size
        st.center_yx += disp_image
        scale = (1 - p.scale_lr) * 1.0 + p.scale_lr * self.scale_factors[scale_id]
        st.target_sz_hw *= scale
        st.z_sz *= scale
        st.x_sz *= scale
        cy, cx = st.center_yx
        th, tw = st.target_sz_hw
        box1 = np.array([cx + 1 - (tw - 1) / 2, cy + 1 - (th - 1) / 2, tw, th])
        x0, y0 = float(box1[0]) - 1.0, float(box1[1]) - 1.0
        score = float(1.0 / (1.0 + np.exp(-float(peaks[scale_id]))))
        instance = Instance(box=(x0, y0, x0 + float(tw), y0 + float(th)), score=score)
        return SiamFCStep(
            x_crops=crops,
            responses=responses_t,
            upsampled_peaks=peaks,
            scale_id=scale_id,
            peak_loc_yx=(int(loc[0]), int(loc[1])),
            response_up=chosen,
            box_ltwh_1based=box1,
            instance=instance,
        )


@TRACKERS.register("siamfc")
def _siamfc(*, net, geometry, model_cfg, track_cfg, device) -> SiamFCTracker:
    instance_size = track_cfg.instance_size or geometry.instance_size
    params = SiamFCTrackParams(
        exemplar_size=geometry.exemplar_size,
        instance_size=instance_size,
        context_amount=geometry.context_amount,
        stride=geometry.stride,
        score_size=geometry.score_size_at(instance_size),
        scale_num=track_cfg.scale_num,
        scale_step=track_cfg.scale_step,
        scale_penalty=track_cfg.scale_penalty,
        scale_lr=track_cfg.scale_lr,
        window_influence=track_cfg.window_influence,
        response_up=track_cfg.response_up,
    )
    return SiamFCTracker(net, params, input_format=model_cfg.input_format, device=device)
