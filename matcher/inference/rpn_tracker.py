"""The anchor-based trackers: PySOT's ``SiamRPNTracker`` and DaSiamRPN's ``SiamRPN_track``.

Both crop a template of side ``s_z = sqrt((w + p)(h + p))`` (``p = context * (w + h)``)
around the target, search a crop ``instance / exemplar`` times larger around the last
position, turn the RPN outputs into candidate boxes around anchors, multiply the
foreground probability by a size/ratio-change penalty, blend in a cosine window, take the
arg-max, move the centre there and blend the size with rate ``penalty * score * lr``.

They differ only in conventions, kept here so both reproduce their originals: PySOT
centres a box at ``x + (w - 1) / 2``, snaps crop corners with ``floor(x + 0.5)`` and
rounds sizes half-to-even (Python 3); DaSiamRPN centres at ``x + w / 2``, rounds halves
away from zero (Python 2) and may switch to a larger search crop for small objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from matcher.crops import floor_half, py2_round, subwindow
from matcher.images import Box
from matcher.inference import anchors as anc
from matcher.inference.tracking import Tracker, crops_to_tensor
from matcher.model_config import NetGeometry
from matcher.structures import Instance


@dataclass
class RPNState:
    """Tracker state: centre ``(cx, cy)`` and size ``(w, h)`` in image pixels (float64)."""

    center: np.ndarray
    size: np.ndarray


@dataclass(frozen=True, eq=False)
class RPNStep:
    """Everything one RPN tracker update computed.

    Attributes:
        x_crop: search crop, ``(X, X, 3)`` uint8 in the network's channel order.
        outputs: raw head outputs (``cls``, ``loc`` ...), batch of one.
        score: foreground probability per candidate, ``(A*S*S,)``.
        pscore: penalised, windowed score whose arg-max is taken.
        penalty: size/ratio penalty per candidate.
        best_idx: chosen candidate (anchor-major index).
        bbox_xywh: returned box ``(x, y, w, h)`` (after smoothing and clipping).
        best_score: ``score[best_idx]``.
        crop_side: side of the search crop in the image.
        instance: the public result.
    """

    x_crop: np.ndarray
    outputs: dict[str, torch.Tensor]
    score: np.ndarray
    pscore: np.ndarray
    penalty: np.ndarray
    best_idx: int
    bbox_xywh: tuple[float, float, float, float]
    best_score: float
    crop_side: float
    instance: Instance


@dataclass(frozen=True)
class RPNTrackParams:
    """Hyper-parameters of the RPN trackers (see ``TrackConfig``) and the network geometry.

    ``instance_size`` is the tracker's search side (``inference.track.instance_size``, else
    the network's); ``geometry`` the network's, made once by the matcher.
    """

    geometry: NetGeometry
    instance_size: int
    anchor_shapes: np.ndarray
    penalty_k: float
    window_influence: float
    lr: float
    adaptive: bool = False
    small_object_instance_size: int = 287
    small_object_fraction: float = 0.004


class PySOTTracker(Tracker):
    """PySOT's ``SiamRPNTracker`` on a stateless :class:`~matcher.models.SiameseNet`.

    Args:
        net: the network.
        params: tracker hyper-parameters.
        input_format / device: see :class:`~matcher.inference.tracking.Tracker`.
    """

    corner_round: Callable[[float], float] = staticmethod(floor_half)

    def __init__(
        self, net: torch.nn.Module, params: RPNTrackParams, *, input_format: str, device
    ) -> None:
        super().__init__(input_format=input_format, device=device)
        self.net = net
        self.params = params
        self.instance_size = params.instance_size
        self._set_geometry(self.instance_size)
        self.state: RPNState | None = None
        self.template: list[torch.Tensor] | None = None
        self.channel_average: np.ndarray | None = None

    # -- conventions (overridden by DaSiamRPN) -----------------------------------------

    def _set_geometry(self, instance_size: int) -> None:
        p = self.params
        self.instance_size = instance_size
        self.score_size = p.geometry.score_size_at(instance_size)
        self.anchors = anc.tracker_anchors(self.score_size, p.geometry.stride, p.anchor_shapes)
        self.window = anc.cosine_window(self.score_size, len(p.anchor_shapes))

    @staticmethod
    def _box_center(x: float, y: float, w: float, h: float) -> np.ndarray:
        return np.array([x + (w - 1) / 2, y + (h - 1) / 2])

    @staticmethod
    def _round(value: float) -> float:
        return round(float(value))

    def _template_side(self, size: np.ndarray) -> float:
        ctx = self.params.geometry.context_amount * np.sum(size)
        return np.sqrt((size[0] + ctx) * (size[1] + ctx))

    def _search_side(self, s_z: float) -> float:
        return s_z * (self.instance_size / self.params.geometry.exemplar_size)

    # -- init / track --------------------------------------------------------------------

    def _init(self, image: np.ndarray, box: Box) -> None:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        self.state = RPNState(center=self._box_center(x0, y0, w, h), size=np.array([w, h]))
        self._on_init(image)
        self.channel_average = np.mean(image, axis=(0, 1))
        s_z = self._round(self._template_side(self.state.size))
        self.z_crop = subwindow(
            image,
            self.state.center,
            self.params.geometry.exemplar_size,
            s_z,
            self.channel_average,
            corner_round=self.corner_round,
        )
        self.template = self.net.encode_template(crops_to_tensor(self.z_crop, self.device))

    def _on_init(self, image: np.ndarray) -> None:
        """Hook run after the state is set and before the template is cropped."""

    def _step(self, image: np.ndarray) -> RPNStep:
        return self._rpn_step(image)[0]

    def _rpn_step(self, image: np.ndarray) -> tuple[RPNStep, list[torch.Tensor], np.ndarray]:
        """One update; also returns the search encoding and the pre-update centre."""
        self._prepare_step(image)
        p = self.params
        state = self.state
        s_z = self._template_side(state.size)
        scale_z = p.geometry.exemplar_size / s_z
        s_x = self._round(self._search_side(s_z))
        x_crop = subwindow(
            image,
            state.center,
            self.instance_size,
            s_x,
            self.channel_average,
            corner_round=self.corner_round,
        )
        xk = self.net.encode_search(crops_to_tensor(x_crop, self.device))
        outputs = self.net.correlate(self.template, xk)
        score = foreground_probability(outputs["cls"])[0]
        picking = self._rescore(score, xk)
        pred = anc.decode_deltas(loc_as_rows(outputs["loc"])[0], self.anchors)
        penalty = anc.size_ratio_penalty(
            pred[2], pred[3], state.size[0] * scale_z, state.size[1] * scale_z, p.penalty_k
        )
        influence = self._window_influence()
        pscore = penalty * picking
        pscore = pscore * (1 - influence) + self.window * influence
        best = int(np.argmax(pscore))
        bbox = pred[:, best] / scale_z
        lr = penalty[best] * score[best] * p.lr
        cx = bbox[0] + state.center[0]
        cy = bbox[1] + state.center[1]
        width = state.size[0] * (1 - lr) + bbox[2] * lr
        height = state.size[1] * (1 - lr) + bbox[3] * lr
        img_h, img_w = image.shape[:2]
        cx = max(0, min(cx, img_w))
        cy = max(0, min(cy, img_h))
        width = max(10, min(width, img_w))
        height = max(10, min(height, img_h))
        if self._observe(image, pred, score, picking, best, scale_z, state):
            self.state = RPNState(center=np.array([cx, cy]), size=np.array([width, height]))
        else:  # not confident: keep the last state and report it
            cx, cy = state.center
            width, height = state.size
        xywh = self._output_box(cx, cy, width, height)
        best_score = float(score[best])
        instance = Instance(
            box=(xywh[0], xywh[1], xywh[0] + xywh[2], xywh[1] + xywh[3]), score=best_score
        )
        step = RPNStep(
            x_crop=x_crop,
            outputs=outputs,
            score=score,
            pscore=pscore,
            penalty=penalty,
            best_idx=best,
            bbox_xywh=xywh,
            best_score=best_score,
            crop_side=float(s_x),
            instance=instance,
        )
        return step, xk, state.center

    # -- hooks (distractor awareness overrides them) ------------------------------------

    def _prepare_step(self, image: np.ndarray) -> None:
        """Called before each search (e.g. to change the search size)."""

    def _rescore(self, score: np.ndarray, xk: list[torch.Tensor]) -> np.ndarray:
        """The scores the candidate is picked by (the network's, here)."""
        return score

    def _window_influence(self) -> float:
        return self.params.window_influence

    def _observe(
        self,
        image: np.ndarray,
        pred: np.ndarray,
        score: np.ndarray,
        picking: np.ndarray,
        best: int,
        scale_z: float,
        state: RPNState,
    ) -> bool:
        """Called after the pick with the network's and the picking scores; returns whether
        to move the state to the pick."""
        return True

    @staticmethod
    def _output_box(cx, cy, width, height) -> tuple[float, float, float, float]:
        return (float(cx - width / 2), float(cy - height / 2), float(width), float(height))


class DaSiamRPNTracker(PySOTTracker):
    """DaSiamRPN's ``SiamRPN_init``/``SiamRPN_track`` with Python 2 semantics.

    The adaptive mode switches to ``small_object_instance_size`` at init when the target
    covers less than ``small_object_fraction`` of the frame.
    """

    corner_round = staticmethod(py2_round)

    @staticmethod
    def _box_center(x: float, y: float, w: float, h: float) -> np.ndarray:
        return np.array([x + w / 2, y + h / 2])

    @staticmethod
    def _round(value: float) -> float:
        return py2_round(value)

    def _search_side(self, s_z: float) -> float:
        p = self.params
        scale_z = p.geometry.exemplar_size / s_z
        d_search = (self.instance_size - p.geometry.exemplar_size) // 2
        return s_z + 2 * (d_search / scale_z)

    def _on_init(self, image: np.ndarray) -> None:
        p = self.params
        size = self.params.instance_size
        if p.adaptive:
            img_h, img_w = image.shape[:2]
            area = self.state.size[0] * self.state.size[1]
            if area / float(img_h * img_w) < p.small_object_fraction:
                size = p.small_object_instance_size
        self._set_geometry(size)


def foreground_probability(cls: torch.Tensor) -> np.ndarray:
    """Softmax foreground probability per candidate, anchor-major.

    Args:
        cls: ``(N, 2A, S, S)`` logits, background channels first.

    Returns:
        ``(N, A * S * S)`` float32.
    """
    n, two_a, s_h, s_w = cls.shape
    logits = cls.reshape(n, 2, two_a // 2 * s_h * s_w)
    return torch.softmax(logits, dim=1)[:, 1].cpu().numpy()


def loc_as_rows(loc: torch.Tensor) -> np.ndarray:
    """``(N, 4A, S, S)`` deltas -> ``(N, 4, A * S * S)`` float32 rows ``dx, dy, dw, dh``."""
    n, four_a, s_h, s_w = loc.shape
    return loc.reshape(n, 4, four_a // 4 * s_h * s_w).cpu().numpy()


def tracker_params(geometry: NetGeometry, track, anchor_shapes) -> RPNTrackParams:
    """:class:`RPNTrackParams` from the network's geometry and a recipe's ``inference.track``."""
    return RPNTrackParams(
        geometry=geometry,
        instance_size=track.instance_size or geometry.instance_size,
        anchor_shapes=anchor_shapes,
        penalty_k=track.penalty_k,
        window_influence=track.window_influence,
        lr=track.lr,
        adaptive=track.adaptive,
        small_object_instance_size=track.small_object_instance_size,
        small_object_fraction=track.small_object_fraction,
    )
