"""The template-matching baseline: normalised cross-correlation over a scale pyramid.

``matcher.load("baseline_template")``. The reference's box crop, resized so its longer
side is ``template_side`` pixels, slides over the scene at every scale of a pyramid
(``cv2.matchTemplate`` with ``TM_CCOEFF_NORMED``: the Pearson correlation of template and
window, over the three colour channels by default). As in the Siamese matchers' match mode,
the pyramid covers products whose longer side is ``min_object_fraction`` to
``max_object_fraction`` of the scene's shorter side, on the grid of integer powers of
``scale_step`` (the scene is never enlarged by more than ``max_upscale``). Local maxima of
every level above the threshold become candidate boxes (the template's footprint mapped
back to the scene), and NMS across levels keeps the best of overlapping ones.

**Score.** The correlation itself, clipped to ``[0, 1]``. Flat templates (grey-level
standard deviation below ``min_std``) cannot be located by correlation and find nothing;
flat scene windows score 0 (OpenCV's normalisation is undefined there).

Template matching sees neither rotation nor perspective: it is the baseline for the
exact-copy case, and the reason learned matchers exist. Its machinery — the template
(:func:`fit_template`, :func:`resize_template`, :func:`as_channels`), the levels
(:func:`level_exponents`, :class:`ScenePyramid`), the search (:func:`search_pyramid`,
and :mod:`matcher.baselines.correlation`'s :func:`correlate` and :func:`peaks`) — is
also match mode's template-matching evidence (:mod:`matcher.inference.ncc`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torchvision.ops import nms

from matcher.baselines.base import BaselineMatcher
from matcher.baselines.correlation import Prepared, correlate, peaks, prepare
from matcher.checks import check_range
from matcher.errors import ConfigError
from matcher.images import box_crop
from matcher.structures import Instance, Reference

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateParams:
    """Settings of the template baseline (``key=value`` overrides name these fields).

    Attributes:
        score_threshold: default minimum correlation of ``match`` (0.65 balanced success
            and false positives on the tiny recipes' validation set, synthetic seed 12).
        max_instances: default cap on instances.
        template_side: longer side of the template, pixels.
        min_object_fraction / max_object_fraction: range of product sizes searched (longer
            side over the scene's shorter side).
        scale_step: ratio between pyramid levels.
        max_upscale: the scene is never enlarged by more than this.
        nms_iou: IoU above which a lower-scored candidate is suppressed.
        peaks_per_level: most local maxima kept per level.
        min_std: grey-level standard deviation below which a template or window is flat.
        colour: correlate the three colour channels (``False``: grey levels only).
    """

    score_threshold: float = 0.65
    max_instances: int = 5
    template_side: int = 64
    min_object_fraction: float = 0.1
    max_object_fraction: float = 1.0
    scale_step: float = 1.1
    max_upscale: float = 4.0
    nms_iou: float = 0.3
    peaks_per_level: int = 20
    min_std: float = 3.0
    colour: bool = True

    def __post_init__(self) -> None:
        check_range("score_threshold", self.score_threshold, 0.0, 1.0)
        check_range("max_instances", self.max_instances, 1, 100)
        check_range("template_side", self.template_side, 8, 1024)
        check_range("min_object_fraction", self.min_object_fraction, 1e-3, 10.0)
        check_range("max_object_fraction", self.max_object_fraction, self.min_object_fraction, 10.0)
        check_range("scale_step", self.scale_step, 1.01, 4.0)
        check_range("max_upscale", self.max_upscale, 0.01, 64.0)
        check_range("nms_iou", self.nms_iou, 0.0, 1.0)
        check_range("peaks_per_level", self.peaks_per_level, 1, 10_000)
        check_range("min_std", self.min_std, 0.0, 255.0)
        if not isinstance(self.colour, bool):
            raise ConfigError(f"parameter colour must be a bool, got {self.colour!r}")


@dataclass(frozen=True, eq=False)
class TemplateFeatures:
    """A reference prepared for the template baseline.

    Attributes:
        template: ``(h, w, C)`` float32 template (``C`` 3 for colour, 1 for grey).
        flat: the template has no texture; it finds nothing.
        recipe: name of the matcher that made it (as in ``ReferenceFeatures``).
        reference_id: the reference's id.
    """

    template: np.ndarray
    flat: bool
    recipe: str
    reference_id: str | None = None


class TemplateMatcher(BaselineMatcher):
    """Multi-scale normalised cross-correlation matcher (see the module docstring).

    Args:
        params: its settings.
    """

    name = "baseline_template"
    features_type = TemplateFeatures

    def __init__(self, params: TemplateParams | None = None) -> None:
        super().__init__(params or TemplateParams())

    def encode_reference(self, reference: Reference) -> TemplateFeatures:
        """The reference's box crop resized to the template size."""
        p: TemplateParams = self.params
        crop, _ = box_crop(reference.image, reference.box)
        template, flat = fit_template(crop, p.template_side, colour=p.colour, min_std=p.min_std)
        return TemplateFeatures(
            template=template, flat=flat, recipe=self.name, reference_id=reference.id
        )

    def _prepare_scene(self, image: np.ndarray) -> ScenePyramid:
        return ScenePyramid.from_image(image, colour=self.params.colour)

    def level_exponents(self, scene_size: tuple[int, int]) -> list[int]:
        """Pyramid levels (exponents ``j`` of ``scale_step ** j``) for a scene.

        Args:
            scene_size: ``(height, width)``.

        Returns:
            Decreasing exponents; the scene is resized by ``scale_step ** j`` at each.
        """
        p: TemplateParams = self.params
        return level_exponents(
            scene_size,
            template_side=p.template_side,
            min_object_fraction=p.min_object_fraction,
            max_object_fraction=p.max_object_fraction,
            scale_step=p.scale_step,
            max_upscale=p.max_upscale,
        )

    def _match_features(
        self, feats: TemplateFeatures, prepared: ScenePyramid, max_instances: int, threshold: float
    ) -> tuple[Instance, ...]:
        p: TemplateParams = self.params
        if feats.flat:
            return ()
        boxes, scores = search_pyramid(
            feats.template,
            prepared,
            self.level_exponents(prepared.grey.shape),
            scale_step=p.scale_step,
            threshold=threshold,
            peaks_per_level=p.peaks_per_level,
            min_std=p.min_std,
            nms_iou=p.nms_iou,
        )
        return tuple(
            Instance(
                box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                score=float(min(1.0, score)),
            )
            for box, score in zip(boxes[:max_instances], scores[:max_instances], strict=True)
        )


# -- the machinery, shared with match mode's template evidence -----------------------------


def fit_template(
    crop: np.ndarray, side: int, *, colour: bool, min_std: float
) -> tuple[np.ndarray, bool]:
    """A crop resized so its longer side is ``side`` pixels, as a correlation template.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB.
        side: the template's longer side, pixels.
        colour: keep the three colour channels (``False``: grey levels only).
        min_std: grey-level standard deviation below which the template is flat.

    Returns:
        ``(template, flat)``: ``(h', w', C)`` float32 and whether it is too flat (or too
        thin) to be located by correlation.
    """
    height, width = crop.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return resize_template(crop, size, colour=colour, min_std=min_std)


def resize_template(
    image: np.ndarray, size: tuple[int, int], *, colour: bool, min_std: float
) -> tuple[np.ndarray, bool]:
    """``image`` resized to ``size = (width, height)`` as a correlation template.

    Returns:
        ``(template, flat)`` as :func:`fit_template`.
    """
    height, width = image.shape[:2]
    shrink = size[0] < width or size[1] < height
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    template, grey = as_channels(cv2.resize(image, size, interpolation=interp), colour=colour)
    flat = bool(grey.std() < min_std) or min(template.shape[:2]) < 2
    return np.ascontiguousarray(template), flat


def as_channels(image: np.ndarray, *, colour: bool) -> tuple[np.ndarray, np.ndarray]:
    """An ``(H, W, 3)`` uint8 RGB image in the correlation's channels.

    Returns:
        ``(data, grey)``: ``(H, W, C)`` float32 (``C`` 3 with ``colour``, else 1) and
        ``(H, W)`` float32 grey levels.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (image.astype(np.float32) if colour else grey[:, :, None]), grey


def level_exponents(
    scene_size: tuple[int, int],
    *,
    template_side: int,
    min_object_fraction: float,
    max_object_fraction: float,
    scale_step: float,
    max_upscale: float,
) -> list[int]:
    """Pyramid levels at which a template of longer side ``template_side`` covers products
    of ``min_object_fraction`` to ``max_object_fraction`` of the scene's shorter side.

    Args:
        scene_size: ``(height, width)``.

    Returns:
        Decreasing exponents ``j``; the scene is resized by ``scale_step ** j`` at each,
        never enlarged by more than ``max_upscale``.
    """
    short = min(scene_size)
    log_step = math.log(scale_step)
    hi = template_side / (min_object_fraction * short)
    lo = template_side / (max_object_fraction * short)
    top = math.floor(math.log(max_upscale) / log_step + 1e-9)
    j_hi = min(math.ceil(math.log(hi) / log_step - 1e-9), top)
    j_lo = min(math.floor(math.log(lo) / log_step + 1e-9), j_hi)
    return list(range(j_hi, j_lo - 1, -1))


@dataclass(eq=False)
class ScenePyramid:
    """A scene and its pyramid levels, rendered on first use (shared by references).

    Attributes:
        image: ``(H, W, C)`` float32 in the templates' channels.
        grey: ``(H, W)`` float32 grey levels.
        levels: rendered levels by scale, ``(image, grey)``.
        fine: optional ``(h, w, 3)`` uint8 RGB original of which ``image`` is a
            downscaled copy: enlarged levels are resampled from it, so they keep the detail
            the downscaling removed (a small product is still a pattern, not a smear).
        colour: the channels of ``image`` (needed to convert ``fine``).
    """

    image: np.ndarray
    grey: np.ndarray
    levels: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    fine: np.ndarray | None = None
    colour: bool = True
    _prepared: dict[float, Prepared] = field(default_factory=dict, repr=False)

    @classmethod
    def from_image(
        cls, image: np.ndarray, *, colour: bool, fine: np.ndarray | None = None
    ) -> ScenePyramid:
        """The pyramid of an ``(H, W, 3)`` uint8 RGB scene; ``fine``, when given, is the
        same scene at a higher resolution (the source of enlarged levels)."""
        data, grey = as_channels(image, colour=colour)
        if fine is not None and fine.shape[0] <= image.shape[0]:
            fine = None
        return cls(image=data, grey=grey, fine=fine, colour=colour)

    def level(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """The scene resized by ``scale``: ``(image, grey)``, rendered once."""
        if scale not in self.levels:
            height, width = self.grey.shape
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if scale > 1 and self.fine is not None:
                interp = cv2.INTER_AREA if size[1] < self.fine.shape[0] else cv2.INTER_LINEAR
                image, grey = as_channels(
                    cv2.resize(self.fine, size, interpolation=interp), colour=self.colour
                )
            else:
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                image = cv2.resize(self.image, size, interpolation=interp)
                grey = cv2.resize(self.grey, size, interpolation=interp)
            if image.ndim == 2:
                image = image[:, :, None]
            self.levels[scale] = (np.ascontiguousarray(image), grey)
        return self.levels[scale]

    def prepared(self, scale: float) -> Prepared:
        """The level's template-independent correlation parts (:func:`prepare`), made once."""
        if scale not in self._prepared:
            self._prepared[scale] = prepare(*self.level(scale))
        return self._prepared[scale]


def search_pyramid(
    template: np.ndarray,
    pyramid: ScenePyramid,
    exponents: list[int],
    *,
    scale_step: float,
    threshold: float,
    peaks_per_level: int,
    min_std: float,
    nms_iou: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Where a template correlates best over the levels of a scene pyramid.

    At each level (the scene resized by ``scale_step ** j``), the local maxima of the
    correlation at or above ``threshold`` (the best ``peaks_per_level``) become boxes, the
    template's footprint mapped back to the scene; non-maximum suppression across levels
    keeps the best of overlapping ones.

    Args:
        template: ``(h, w, C)`` float32, in the pyramid's channels.
        pyramid: the scene.
        exponents: the levels searched (:func:`level_exponents`).

    Returns:
        ``(boxes, scores)``: ``(N, 4)`` float32 xyxy in the pyramid's base pixels (clipped
        to it) and ``(N,)`` float32 correlations, best first.
    """
    th, tw = template.shape[:2]
    height, width = pyramid.grey.shape
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for j in exponents:
        scale = scale_step**j
        image, grey = pyramid.level(scale)
        if image.shape[0] < th or image.shape[1] < tw:
            continue
        response = correlate(
            image, grey, template, min_std=min_std, prepared=pyramid.prepared(scale)
        )
        ys, xs, values = peaks(response, threshold=threshold, top_k=peaks_per_level)
        if len(values) == 0:
            continue
        x0, y0 = xs / scale, ys / scale
        boxes.append(np.stack([x0, y0, x0 + tw / scale, y0 + th / scale], axis=1))
        scores.append(values)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    all_boxes = np.concatenate(boxes).astype(np.float32)
    all_boxes[:, [0, 2]] = all_boxes[:, [0, 2]].clip(0, width)
    all_boxes[:, [1, 3]] = all_boxes[:, [1, 3]].clip(0, height)
    all_scores = np.concatenate(scores).astype(np.float32)
    keep = nms(torch.from_numpy(all_boxes), torch.from_numpy(all_scores), nms_iou).numpy()
    return all_boxes[keep], all_scores[keep]
