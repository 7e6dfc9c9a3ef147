"""Template-matching evidence for match mode: normalised cross-correlation with the reference.

Local features fail on products with little texture and on blurred or small views; a
Siamese network trained on synthetic packs misses real photographs; plain correlation of
the reference's pixels with the scene's still finds a product seen from the reference's
own viewpoint, and separates it from a look-alike of another design. This stage gives the
fusion (:mod:`matcher.inference.evidence`) that evidence, cheaply, with the machinery of
the template baseline (:mod:`matcher.baselines.template`: ``TM_CCOEFF_NORMED`` over the
colour channels, flat windows scoring 0):

1. **proposals**: the reference's box crop, resized so its longer side is
   ``template_side`` pixels, slides over a pyramid of the scene *downscaled* so its longer
   side is at most ``scene_side`` (products of ``min_object_fraction`` to
   ``max_object_fraction`` of the scene's shorter side); the best peaks at or above
   ``min_score`` across levels, after NMS, are candidate boxes. The downscaled scene is
   enlarged at most ``max_upscale`` times, so the range reaches down to products of
   ``template_side / max_upscale`` working pixels (32 px, 6.7 % of the shorter side of a
   640x480 photo), which no Siamese pyramid level of the default searches; the levels that
   enlarge the downscaled scene are resampled from the original photo, not from the
   downscaled copy. (A cap of 2.5, reaching 5.3 %, cost twice the time and found fewer
   of the small products of the real-photo validation split: issue 15 in
   ``benchmarks/RESULTS.md``.) ``match_many`` starts them with the scene
   (:meth:`NccVerifier.start`), on the match thread pool beside the Siamese search.
2. **candidate evidence** (the ``template`` feature of the calibration): for a candidate
   box, the reference resized to the box (its longer side ``box_side`` pixels, times each
   of ``scales``) is correlated with the box's neighbourhood (the box widened by
   ``margin`` of its size on every side); the best correlation's excess over
   ``evidence_floor``, rescaled to ``[0, 1]``, is the evidence. A loose or shifted box
   still finds the product under it. Correlation is evidence *for* the product when it is
   high, but a low one proves little (a perspective view, relighting or blur lowers it
   while the local features still hold): below the floor it counts as none, so the
   calibration's logistic model does not hold it against a candidate that the other
   evidence supports (on the real-photo validation split a floor of 0.5 kept the
   perspective and relit views that the raw correlation cost).

Shape shorthand / naming: *pattern* is the reference crop correlated with the scene (the
Siamese recipes' *template* is their exemplar encoding); boxes are xyxy float pixels.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import cv2
import numpy as np

from matcher.baselines.template import (
    ScenePyramid,
    as_channels,
    correlate,
    fit_template,
    level_exponents,
    resize_template,
    search_pyramid,
)
from matcher.checks import check_range
from matcher.errors import ConfigError
from matcher.images import box_crop
from matcher.inference.parallel import submit
from matcher.structures import Reference

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class NccParams:
    """Settings of the template-matching stage.

    Attributes:
        scene_side: proposals search the scene downscaled so its longer side is at most
            this (pixels; never enlarged).
        template_side: longer side of the proposals' pattern, pixels.
        scale_step: ratio between the proposals' pyramid levels.
        min_object_fraction / max_object_fraction: product sizes proposed (longer side over
            the scene's shorter side).
        max_upscale: the downscaled scene is never enlarged by more than this.
        peaks_per_level: most local maxima kept per pyramid level.
        nms_iou: IoU above which a weaker proposal is suppressed.
        min_score: proposals correlating less are dropped.
        box_side: candidate evidence: the box's longer side is resized to this (pixels).
        margin: candidate evidence: the searched neighbourhood is the box widened by this
            fraction of its size on every side.
        scales: candidate evidence: sizes of the pattern relative to the box.
        evidence_floor: candidate evidence: correlations at or below this are no
            evidence; above it the excess is rescaled to ``[0, 1]``.
        min_std: grey-level standard deviation below which a pattern or window is flat.
        colour: correlate the three colour channels (``False``: grey levels only).
    """

    scene_side: int = 320
    template_side: int = 32
    scale_step: float = 1.2
    min_object_fraction: float = 0.05
    max_object_fraction: float = 1.0
    max_upscale: float = 2.0
    peaks_per_level: int = 5
    nms_iou: float = 0.3
    min_score: float = 0.5
    box_side: int = 40
    margin: float = 0.2
    scales: tuple[float, ...] = (0.87, 1.0, 1.15)
    evidence_floor: float = 0.5
    min_std: float = 3.0
    colour: bool = True

    def __post_init__(self) -> None:
        check_range("scene_side", self.scene_side, 32, 16384)
        check_range("template_side", self.template_side, 8, 1024)
        check_range("scale_step", self.scale_step, 1.01, 4.0)
        check_range("min_object_fraction", self.min_object_fraction, 1e-3, 10.0)
        check_range("max_object_fraction", self.max_object_fraction, self.min_object_fraction, 10.0)
        check_range("max_upscale", self.max_upscale, 0.01, 64.0)
        check_range("peaks_per_level", self.peaks_per_level, 1, 10_000)
        check_range("nms_iou", self.nms_iou, 0.0, 1.0)
        check_range("min_score", self.min_score, -1.0, 1.0)
        check_range("box_side", self.box_side, 8, 1024)
        check_range("margin", self.margin, 0.0, 4.0)
        if not self.scales:
            raise ConfigError("scales must name at least one pattern size")
        for k in self.scales:
            check_range("scales", k, 0.25, 4.0)
        check_range("evidence_floor", self.evidence_floor, -1.0, 0.99)
        check_range("min_std", self.min_std, 0.0, 255.0)


@dataclass(frozen=True, eq=False)
class NccReference:
    """A reference prepared for correlation.

    Attributes:
        pattern: ``(h, w, C)`` float32, the proposals' pattern (longer side
            ``template_side``).
        crop: ``(h, w, 3)`` uint8 RGB box crop, shrunk to at most twice the largest
            candidate pattern (resized again for every candidate box).
        flat: the product has no texture to correlate; it yields no evidence.
    """

    pattern: np.ndarray
    crop: np.ndarray
    flat: bool


@dataclass(frozen=True, eq=False)
class NccScene:
    """A scene prepared for correlation (shared by every reference of a ``match_many``).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, the scene.
        small: the scene downscaled by ``scale`` (the proposals' working resolution).
        pyramid: the pyramid of ``small``.
        exponents: the pyramid levels the proposals search (:func:`level_exponents`).
        scale: working pixels per scene pixel (at most 1).
        early: proposals started before they were asked for (:meth:`NccVerifier.start`),
            by ``(reference, limit)``.
    """

    image: np.ndarray
    small: np.ndarray
    pyramid: ScenePyramid
    exponents: list[int]
    scale: float
    early: dict[tuple[NccReference, int], Future] = field(default_factory=dict, repr=False)


class NccVerifier:
    """Template-matching proposals and evidence (see the module docstring).

    Args:
        params: its settings.
    """

    def __init__(self, params: NccParams | None = None) -> None:
        self.params = params or NccParams()

    def encode_reference(self, reference: Reference) -> NccReference:
        """The reference's box crop as a pattern."""
        p = self.params
        crop, _ = box_crop(reference.image, reference.box)
        pattern, flat = fit_template(crop, p.template_side, colour=p.colour, min_std=p.min_std)
        keep = 2.0 * p.box_side * max(p.scales) / max(crop.shape[:2])
        if keep < 1.0:
            size = (max(2, round(crop.shape[1] * keep)), max(2, round(crop.shape[0] * keep)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        return NccReference(pattern=pattern, crop=np.ascontiguousarray(crop), flat=flat)

    def prepare_scene(self, image: np.ndarray) -> NccScene:
        """The downscaled scene, its (lazily rendered) pyramid and the levels searched."""
        p = self.params
        height, width = image.shape[:2]
        scale = min(1.0, p.scene_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        pyramid = ScenePyramid.from_image(small, colour=p.colour, fine=image)
        exponents = level_exponents(
            pyramid.grey.shape,
            template_side=p.template_side,
            min_object_fraction=p.min_object_fraction,
            max_object_fraction=p.max_object_fraction,
            scale_step=p.scale_step,
            max_upscale=p.max_upscale,
        )
        return NccScene(image=image, small=small, pyramid=pyramid, exponents=exponents, scale=scale)

    def start(
        self, image: np.ndarray, refs: list[NccReference | None], limit: int
    ) -> _StartedScene:
        """:meth:`prepare_scene` and then each reference's :meth:`proposals` (``limit``) as
        tasks of the match thread pool (:mod:`matcher.inference.parallel`), so that they run
        beside the Siamese search, which does not keep two cores busy. ``result()`` gives
        the scene, whose :meth:`proposals` for those references wait for their task."""
        wanted = {ref: None for ref in refs if ref is not None and not ref.flat and limit > 0}
        scene_job = submit(self._prepare_levels if wanted else self.prepare_scene, image)
        jobs = {(ref, limit): submit(self._proposals_of, ref, scene_job, limit) for ref in wanted}
        return _StartedScene(scene_job, jobs)

    def _prepare_levels(self, image: np.ndarray) -> NccScene:
        """:meth:`prepare_scene` with every searched level rendered and prepared, once, before
        the proposal tasks read them (rendered lazily, the first tasks would race to render
        the same levels)."""
        scene = self.prepare_scene(image)
        for j in scene.exponents:
            scene.pyramid.prepared(self.params.scale_step**j)
        return scene

    def _proposals_of(
        self, ref: NccReference, scene_job: Future, limit: int
    ) -> list[tuple[Box, float]]:
        return self._search(ref, scene_job.result(), limit)

    def proposals(self, ref: NccReference, scene: NccScene, limit: int) -> list[tuple[Box, float]]:
        """Up to ``limit`` boxes where the pattern correlates best (scene pixels), with their
        correlation, best first."""
        started = scene.early.get((ref, limit))
        if started is not None:  # queued before any task that asks, so it runs or ran
            return list(started.result())
        return self._search(ref, scene, limit)

    def _search(self, ref: NccReference, scene: NccScene, limit: int) -> list[tuple[Box, float]]:
        p = self.params
        if ref.flat or limit <= 0:
            return []
        boxes, scores = search_pyramid(
            ref.pattern,
            scene.pyramid,
            scene.exponents,
            scale_step=p.scale_step,
            threshold=p.min_score,
            peaks_per_level=p.peaks_per_level,
            min_std=p.min_std,
            nms_iou=p.nms_iou,
        )
        return [
            (tuple(float(v) / scene.scale for v in box), float(score))  # type: ignore[misc]
            for box, score in zip(boxes[:limit], scores[:limit], strict=True)
        ]

    def correlation(self, ref: NccReference, scene: NccScene, box: Box) -> float:
        """Best correlation, in ``[0, 1]`` (floored at 0), of the reference resized to
        ``box`` (scene pixels) over the box's neighbourhood; 0 for a flat reference or a
        degenerate box."""
        p = self.params
        x0, y0, x1, y1 = (float(v) for v in box)
        width, height = x1 - x0, y1 - y0
        if ref.flat or width < 2 or height < 2:
            return 0.0
        scale = p.box_side / max(width, height)
        source, to_source = scene.image, 1.0
        if scale <= scene.scale:  # the working resolution is fine enough: crop from it
            source, to_source = scene.small, scene.scale
        reach = p.margin + (max(p.scales) - 1.0) / 2.0
        region, _ = box_crop(
            source,
            (
                (x0 - reach * width) * to_source,
                (y0 - reach * height) * to_source,
                (x1 + reach * width) * to_source,
                (y1 + reach * height) * to_source,
            ),
        )
        factor = scale / to_source
        size = (max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor)))
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        image, grey = as_channels(cv2.resize(region, size, interpolation=interp), colour=p.colour)
        best = 0.0
        for k in p.scales:
            pattern_size = (
                min(size[0], max(2, round(width * scale * k))),
                min(size[1], max(2, round(height * scale * k))),
            )
            if min(pattern_size) < 2:
                continue
            pattern, flat = resize_template(
                ref.crop, pattern_size, colour=p.colour, min_std=p.min_std
            )
            if flat:
                continue
            response = correlate(image, grey, pattern, min_std=p.min_std)
            best = max(best, float(response.max()))  # finite: correlate zeroes NaN
        return min(best, 1.0)

    def score(self, ref: NccReference, scene: NccScene, box: Box) -> float:
        """The ``template`` evidence of ``box``: :meth:`correlation`'s excess over
        ``evidence_floor``, rescaled to ``[0, 1]``."""
        floor = self.params.evidence_floor
        excess = self.correlation(ref, scene, box) - floor
        return float(min(max(excess / (1.0 - floor), 0.0), 1.0))


@dataclass(frozen=True, eq=False)
class _StartedScene:
    """What :meth:`NccVerifier.start` returns: ``result()`` is the prepared scene."""

    scene_job: Future
    jobs: dict[tuple[NccReference, int], Future]

    def result(self) -> NccScene:
        scene = self.scene_job.result()
        scene.early.update(self.jobs)
        return scene


@dataclass(frozen=True, eq=False)
class NccQuery:
    """One reference in one scene, for the fusion: the stage and both prepared inputs."""

    verifier: NccVerifier
    reference: NccReference
    scene: NccScene

    def proposals(self, limit: int) -> list[tuple[Box, float]]:
        """:meth:`NccVerifier.proposals` of this reference in this scene."""
        return self.verifier.proposals(self.reference, self.scene, limit)

    def score(self, box: Box) -> float:
        """:meth:`NccVerifier.score` of ``box`` (the ``template`` evidence)."""
        return self.verifier.score(self.reference, self.scene, box)
