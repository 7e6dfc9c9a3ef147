"""Photometric, blur, flip and grey augmentation of a training pair, on tv_tensors.

The geometric part of PySOT's augmentation (shift and scale) is done by the crop itself
(:mod:`trainers.data.crops`, one affine warp per image). What remains runs here with
``torchvision.transforms.v2`` on ``tv_tensors.Image`` / ``BoundingBoxes`` / ``Mask``, so a
flip moves the boxes and the mask with the pixels:

* **colour**: PySOT's PCA lighting jitter, ``rgb -= (V @ randn(3)) * color`` with PySOT's
  ``rgbVar`` matrix ``V`` (an offset of a few grey levels along the principal colour
  axes of natural images), on both crops, independently. No hue or saturation jitter:
  look-alike products often differ mainly in colour, so the matcher must not learn to
  ignore it.
* **grey** (probability ``gray``): both crops together become grey (3 equal channels),
  as PySOT's ``GRAY`` does to the whole pair.
* **blur** (probability ``blur``): Gaussian blur of the search crop, sigma ``U(0.5, 3)``.
* **motion blur** (probability ``motion_blur``): :class:`MotionBlur` of the search crop, a
  line kernel of random angle and length.
* **relight** (probability ``relight``): :class:`Relight` of the search crop, the light of
  another room: brightness, contrast, colour temperature and a shadow gradient (what a
  photograph of a shelf does to a product's catalog colours; the PCA jitter above moves
  them by a few grey levels only).
* **JPEG** (probability ``jpeg``): :class:`Jpeg` re-encodes the search crop at a low
  quality (blocks and smeared chroma of a phone upload), after any blur.
* **flip** (probability ``flip``): horizontal flip, template and search independently.

Randomness comes from torch's generator, forked and seeded per call
(:meth:`PairAugment.__call__` takes a ``seed``), so a pair's augmentation depends only on
that seed and never on what ran before in the process.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from matcher.errors import InvalidArgumentError
from trainers.evaluate import real_compose as rc

#: PySOT's PCA colour matrix (``Augmentation.rgbVar``), rows and columns in RGB order.
RGB_VAR = torch.tensor(
    [
        [-0.55919361, 0.98062831, -0.41940627],
        [1.72091413, 0.19879334, -1.82968581],
        [4.64467907, 4.73710203, 4.88324118],
    ],
    dtype=torch.float32,
)

TemplateCrop = tuple[tv_tensors.Image, tv_tensors.BoundingBoxes]
SearchCrop = tuple[tv_tensors.Image, tv_tensors.BoundingBoxes, tv_tensors.Mask]


class PcaColor(v2.Transform):
    """PCA lighting jitter: subtract ``(RGB_VAR @ randn(3)) * strength`` from every pixel.

    Only images change; boxes and masks pass through. Works on ``(..., 3, H, W)`` uint8
    images (the result is rounded and clipped to ``[0, 255]``) or floats in ``[0, 1]``.
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        if strength < 0:
            raise InvalidArgumentError(f"colour strength must be >= 0, got {strength}")
        self.strength = float(strength)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"offset": (RGB_VAR @ torch.randn(3)) * self.strength}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        offset = params["offset"].view(3, 1, 1)
        if inpt.dtype == torch.uint8:
            out = (inpt.float() - offset).round_().clamp_(0, 255).to(torch.uint8)
        else:
            out = (inpt - offset / 255.0).clamp(0, 1)
        return tv_tensors.wrap(out, like=inpt)


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels at ``angle`` degrees.

    Args:
        length: odd kernel side and line length in pixels (``>= 1``).
        angle: direction, degrees counter-clockwise from the x axis.

    Returns:
        ``(length, length)`` float32 summing to 1.
    """
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length), flags=cv2.INTER_LINEAR)
    total = float(kernel.sum())
    if total <= 0:  # pragma: no cover - a rotated centre line always keeps its centre
        kernel[length // 2, length // 2] = total = 1.0
    return kernel / total


class MotionBlur(v2.Transform):
    """Motion blur: convolution with a line kernel of random angle and odd length.

    The length is drawn uniformly among the odd values in ``[min_length, max_length]``
    and the angle uniformly in ``[0, 180)`` degrees. Geometry does not move, so boxes and
    masks pass through unchanged.
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, min_length: int = 5, max_length: int = 21) -> None:
        super().__init__()
        if not 1 <= min_length <= max_length:
            raise InvalidArgumentError(
                f"motion blur lengths must satisfy 1 <= min <= max, got {min_length}, {max_length}"
            )
        self.min_length = int(min_length) | 1
        self.max_length = max(self.min_length, int(max_length) | 1)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        choices = (self.max_length - self.min_length) // 2 + 1
        length = self.min_length + 2 * int(torch.randint(choices, ()))
        angle = float(torch.rand(())) * 180.0
        return {"kernel": line_kernel(length, angle)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt.dtype != torch.uint8 or inpt.ndim != 3:
            raise InvalidArgumentError("MotionBlur expects (C, H, W) uint8 images")
        hwc = inpt.permute(1, 2, 0).contiguous().numpy()
        out = cv2.filter2D(hwc, -1, params["kernel"], borderType=cv2.BORDER_REFLECT_101)
        if out.ndim == 2:
            out = out[:, :, None]
        return tv_tensors.wrap(torch.from_numpy(out).permute(2, 0, 1).contiguous(), like=inpt)


class Relight(v2.Transform):
    """Another light on the whole crop, the real-photo set's relighting
    (:func:`trainers.evaluate.real_compose.apply_relight`): ``((x - 128) * contrast + 128)
    * gain``, the red channel times ``1 + warmth`` and the blue one times ``1 - warmth``,
    then a linear shadow across the crop, from full light down to ``floor`` of it.

    Drawn per call: ``gain`` log-uniform in ``gain``, ``contrast``, ``warmth`` (either
    sign) and ``floor`` uniform in their ranges, the shadow's direction uniform. Only
    images change; boxes and masks pass through.
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(
        self,
        gain: tuple[float, float] = (0.5, 1.6),
        contrast: tuple[float, float] = (0.6, 1.4),
        warmth: float = 0.25,
        floor: tuple[float, float] = (0.45, 1.0),
    ) -> None:
        super().__init__()
        if not (0 < gain[0] <= gain[1] and 0 < contrast[0] <= contrast[1]):
            raise InvalidArgumentError(f"relight gain {gain} and contrast {contrast} must be > 0")
        if not (0 <= warmth < 1 and 0 <= floor[0] <= floor[1] <= 1):
            raise InvalidArgumentError(
                f"relight warmth {warmth} must be in [0, 1) and floor {floor} in [0, 1]"
            )
        self.gain, self.contrast, self.warmth, self.floor = gain, contrast, warmth, floor

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        u = torch.rand(5).tolist()
        lo, hi = math.log(self.gain[0]), math.log(self.gain[1])
        return {
            "gain": math.exp(lo + (hi - lo) * u[0]),
            "contrast": self.contrast[0] + (self.contrast[1] - self.contrast[0]) * u[1],
            "warmth": self.warmth * (2 * u[2] - 1),
            "floor": self.floor[0] + (self.floor[1] - self.floor[0]) * u[3],
            "angle": 2 * math.pi * u[4],
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt.dtype != torch.uint8 or inpt.ndim != 3 or inpt.shape[0] != 3:
            raise InvalidArgumentError("Relight expects (3, H, W) uint8 images")
        light = rc.Relight(
            gain=params["gain"],
            contrast=params["contrast"],
            warmth=params["warmth"],
            ramp_angle=params["angle"],
            ramp_floor=params["floor"],
            ramp_centre=(0.5, 0.5),
        )
        hwc = inpt.permute(1, 2, 0).numpy().astype(np.float32)
        out = rc.to_uint8(rc.apply_relight(hwc, light))
        return tv_tensors.wrap(torch.from_numpy(out).permute(2, 0, 1).contiguous(), like=inpt)


class Jpeg(v2.Transform):
    """JPEG re-encoding (OpenCV, 4:2:0 chroma) at a quality drawn uniformly from
    ``quality``. Only images change."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, quality: tuple[int, int] = (10, 40)) -> None:
        super().__init__()
        if not 1 <= quality[0] <= quality[1] <= 100:
            raise InvalidArgumentError(f"JPEG quality range {quality} must lie in [1, 100]")
        self.quality = (int(quality[0]), int(quality[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        lo, hi = self.quality
        return {"quality": lo + int(torch.randint(hi - lo + 1, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if inpt.dtype != torch.uint8 or inpt.ndim != 3 or inpt.shape[0] != 3:
            raise InvalidArgumentError("Jpeg expects (3, H, W) uint8 images")
        out = rc.jpeg(inpt.permute(1, 2, 0).contiguous().numpy(), params["quality"])
        return tv_tensors.wrap(torch.from_numpy(out).permute(2, 0, 1).contiguous(), like=inpt)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded inside the block, then restore the thread count.

    Training crops are small (a few hundred kilopixels at most): intra-op threads only
    add synchronisation, which costs 100x when the cores are busy (measured: 40 ms
    instead of 0.15 ms for one colour jitter on a loaded 2-core machine). DataLoader
    workers already run single-threaded; this covers work in the main process.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise InvalidArgumentError(f"{name} must be a probability in [0, 1], got {value}")
    return float(value)


class PairAugment:
    """The photometric/blur/flip/grey augmentation of a (template, search) pair.

    Args:
        blur: probability of a Gaussian blur of the search crop.
        motion_blur: probability of a motion blur of the search crop.
        flip: probability of a horizontal flip, drawn for each crop independently.
        color: strength of the PCA colour jitter (0 disables it).
        gray: probability of turning both crops grey.
        relight: probability of a :class:`Relight` of the search crop.
        jpeg: probability of a :class:`Jpeg` re-encoding of the search crop.
        blur_sigma: range of the Gaussian blur's sigma, search pixels.
        motion_length: range of the motion-blur line length, search pixels.

    Raises:
        InvalidArgumentError: a probability outside ``[0, 1]`` or a negative strength.
    """

    def __init__(
        self,
        *,
        blur: float = 0.0,
        motion_blur: float = 0.0,
        flip: float = 0.0,
        color: float = 0.0,
        gray: float = 0.0,
        relight: float = 0.0,
        jpeg: float = 0.0,
        blur_sigma: tuple[float, float] = (0.5, 3.0),
        motion_length: tuple[int, int] = (5, 21),
    ) -> None:
        self.blur = _probability("blur", blur)
        self.motion_blur = _probability("motion_blur", motion_blur)
        self.flip = _probability("flip", flip)
        self.gray = _probability("gray", gray)
        self.relight = _probability("relight", relight)
        self.jpeg = _probability("jpeg", jpeg)
        if color < 0 or math.isnan(color):
            raise InvalidArgumentError(f"color must be >= 0, got {color}")
        self.color = float(color)
        kernel = 2 * math.ceil(3 * blur_sigma[1]) + 1
        colour = [PcaColor(self.color)] if self.color > 0 else []
        self._template = v2.Compose([*colour, v2.RandomHorizontalFlip(self.flip)])
        self._search = v2.Compose(
            [
                *colour,
                v2.RandomApply([Relight()], p=self.relight),
                v2.RandomApply([v2.GaussianBlur(kernel, sigma=blur_sigma)], p=self.blur),
                v2.RandomApply([MotionBlur(*motion_length)], p=self.motion_blur),
                v2.RandomApply([Jpeg()], p=self.jpeg),
                v2.RandomHorizontalFlip(self.flip),
            ]
        )
        self._grey = v2.Grayscale(num_output_channels=3)

    @property
    def is_identity(self) -> bool:
        """Whether every augmentation is off (the crops pass through unchanged)."""
        probabilities = (self.blur, self.motion_blur, self.flip, self.gray, self.relight, self.jpeg)
        return self.color == 0 and max(probabilities) == 0

    def __call__(
        self, template: TemplateCrop, search: SearchCrop, *, seed: int
    ) -> tuple[TemplateCrop, SearchCrop]:
        """Augment one pair.

        Args:
            template: ``(image (3, Z, Z) uint8, boxes (1, 4) XYXY in template pixels)``.
            search: ``(image (3, X, X) uint8, boxes (1, 4) XYXY in search pixels,
                mask (X, X) uint8)``.
            seed: seed of this call's random draws (torch's generator is forked, so the
                global state is left as it was).

        Returns:
            The augmented ``template`` and ``search`` tuples, same types and shapes; boxes
            and the mask moved with the pixels.
        """
        if self.is_identity:
            return template, search
        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            grey = bool(torch.rand(()) < self.gray)
            template = self._template(*template)
            search = self._search(*search)
            if grey:
                template = (self._grey(template[0]), *template[1:])
                search = (self._grey(search[0]), *search[1:])
        return template, search
