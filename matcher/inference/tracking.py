"""What every tracker shares: the public ``init``/``track`` API and image plumbing.

A tracker is the classic mode of a matcher: ``init(frame, box)`` takes the target from the
first frame, each ``track(frame)`` finds it in the next one near its last position. The
network is shared with match mode; the state (position, size, template encoding) lives in
the tracker object. ``step(frame)`` returns every intermediate quantity of one update (the
crop, raw outputs, scores, chosen index) for inspection and parity tests; ``track`` returns
just the :class:`~matcher.structures.Instance`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from matcher.images import Box, ImageLike, load_image, validate_box
from matcher.registry import Registry
from matcher.structures import Instance

TRACKERS: Registry = Registry("tracker")


def to_model_order(image: np.ndarray, input_format: str) -> np.ndarray:
    """RGB uint8 image -> the channel order the network expects (``bgr`` or ``rgb``)."""
    if input_format == "bgr":
        return np.ascontiguousarray(image[:, :, ::-1])
    return image


def crops_to_tensor(crops: list[np.ndarray] | np.ndarray, device: torch.device) -> torch.Tensor:
    """``HxWx3`` uint8 crop(s) -> ``(N, 3, H, W)`` float32 on ``device`` (values 0-255)."""
    batch = np.stack(crops) if isinstance(crops, list) else crops
    if batch.ndim == 3:
        batch = batch[None]
    tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    # Contiguous NCHW, as the original trackers fed their networks (a channels-last view
    # would select other convolution kernels and change the last bits).
    return tensor.permute(0, 3, 1, 2).contiguous().float()


class Tracker(ABC):
    """Base of the single-target trackers.

    Args:
        input_format: channel order of the network (``"bgr"`` or ``"rgb"``).
        device: where the network runs.
    """

    def __init__(self, *, input_format: str, device: torch.device) -> None:
        self.input_format = input_format
        self.device = device
        self.initialized = False

    def _prepare(self, frame: ImageLike) -> np.ndarray:
        return to_model_order(load_image(frame), self.input_format)

    def init(self, frame: ImageLike, box: Box) -> None:
        """Start tracking the object in ``box`` (``x0, y0, x1, y1``) of ``frame``.

        Raises:
            InvalidImageError: the frame cannot be read.
            InvalidBoxError: the box is degenerate or outside the frame.
        """
        image = self._prepare(frame)
        box = validate_box(box, image.shape[:2], name="initial box")
        with torch.no_grad():
            self._init(image, box)
        self.initialized = True

    def track(self, frame: ImageLike) -> Instance:
        """Locate the target in the next frame."""
        return self.step(frame).instance

    def step(self, frame: ImageLike) -> Any:
        """One update with all intermediate quantities (a tracker-specific dataclass with an
        ``instance`` field)."""
        if not self.initialized:
            raise RuntimeError("call init(frame, box) before track()")
        image = self._prepare(frame)
        with torch.no_grad():
            return self._step(image)

    @abstractmethod
    def _init(self, image: np.ndarray, box: Box) -> None: ...

    @abstractmethod
    def _step(self, image: np.ndarray) -> Any: ...
