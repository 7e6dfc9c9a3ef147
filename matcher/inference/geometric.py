"""Geometric verification of match-mode candidates with local features.

A Siamese network and an embedder say *something like the reference is here*; on a
planar, textured product a homography between the reference and the scene says *this is
the reference, seen from there*, and pins its outline to a pixel. This stage gives every
Siamese recipe that second kind of evidence:

1. the reference's keypoints and descriptors (SIFT, by default RootSIFT: descriptors L1
   normalised and square-rooted, which compares them by the Hellinger kernel) are
   computed once per reference, the scene's once per scene (shared by all references of a
   ``match_many`` call);
2. every scene descriptor is matched to its two nearest reference descriptors and kept
   when the nearer passes Lowe's ratio test (scene to reference, so every copy of the
   product keeps its matches);
3. **candidate evidence**: for a candidate box, the matches whose scene point falls in
   the box widened by ``region_context`` are fitted with a RANSAC homography. A fit whose
   projected reference outline is a plausible view (convex, not mirrored, bounded
   anisotropy: :func:`matcher.baselines.homography.plausible_quad`, as the SIFT baseline
   checks) yields the outline and a refined box; the number of inliers, their share of the
   region's matches and their spread (area of their convex hull over the outline's area)
   are the evidence;
4. **proposals**: the same fitting over the whole scene, removing each instance's
   matches and repeating, proposes the instances the Siamese search missed.

The evidence is turned into a probability by :mod:`matcher.inference.fusion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from matcher.baselines.homography import (
    check_ransac_method,
    fit_homography,
    plausible_quad,
    points_in_quad,
    project,
    quad_size,
)
from matcher.baselines.sift import SiftMatcher, SiftParams, ratio_matches
from matcher.checks import check_range
from matcher.errors import ConfigError
from matcher.structures import Reference


@dataclass(frozen=True)
class GeometricParams:
    """Settings of the geometric stage.

    Attributes:
        ratio: Lowe's ratio test threshold.
        ransac_reproj: RANSAC inlier distance, scene working pixels.
        ransac_iters: RANSAC iterations per fit.
        ransac_method: the robust estimator
            (:data:`matcher.baselines.homography.RANSAC_METHODS`); OpenCV's USAC preset
            rather than classic RANSAC: 30-70x less time per fit on the default's
            candidate regions, and on the validation splits no success lost (issue 15 in
            ``benchmarks/RESULTS.md``).
        min_inliers: a fit with fewer inliers is no evidence.
        region_context: a candidate's region is its box widened by this fraction of its
            size on every side.
        max_anisotropy / min_side: plausibility of a projected outline (see
            :func:`matcher.baselines.homography.plausible_quad`).
        rootsift: compare RootSIFT rather than SIFT descriptors.
        reference_sides: the reference is described at each of these working resolutions
            (longer side, pixels; the first is the coordinate frame): a small or blurred
            instance matches the coarse description when the fine one finds nothing.
        scene_side: working resolution of the scene (longer side, pixels).
        reference_features / scene_features: most keypoints kept.
    """

    ratio: float = 0.8
    ransac_reproj: float = 5.0
    ransac_iters: int = 1000
    ransac_method: str = "usac_default"
    min_inliers: int = 6
    region_context: float = 0.3
    max_anisotropy: float = 3.0
    min_side: float = 6.0
    rootsift: bool = True
    reference_sides: tuple[int, ...] = (320, 96)
    scene_side: int = 1024
    reference_features: int = 1500
    scene_features: int = 5000

    def __post_init__(self) -> None:
        check_range("ratio", self.ratio, 0.05, 1.0)
        check_range("ransac_reproj", self.ransac_reproj, 0.1, 100.0)
        check_range("ransac_iters", self.ransac_iters, 10, 1_000_000)
        check_ransac_method(self.ransac_method)
        check_range("min_inliers", self.min_inliers, 4, 10_000)
        check_range("region_context", self.region_context, 0.0, 4.0)
        check_range("max_anisotropy", self.max_anisotropy, 1.0, 100.0)
        check_range("min_side", self.min_side, 1.0, 10_000.0)
        if not self.reference_sides:
            raise ConfigError("reference_sides must name at least one resolution")
        for side in self.reference_sides:
            check_range("reference_sides", side, 32, 4096)
        check_range("scene_side", self.scene_side, 64, 16384)
        check_range("reference_features", self.reference_features, 0, 1_000_000)
        check_range("scene_features", self.scene_features, 0, 1_000_000)


@dataclass(frozen=True)
class Evidence:
    """What the local features say about one region of the scene.

    Attributes:
        matches: ratio-test matches inside the region.
        inliers: RANSAC inliers of the best plausible homography (0 without one).
        spread: area of the inliers' convex hull over the projected outline's area, in
            ``[0, 1]`` (inliers bunched on one corner of the product prove less).
        quad: ``(4, 2)`` projected reference outline in scene pixels, or ``None``.
    """

    matches: int
    inliers: int
    spread: float
    quad: np.ndarray | None

    @property
    def inlier_ratio(self) -> float:
        """Share of the region's matches that are inliers (0 without matches)."""
        return self.inliers / self.matches if self.matches else 0.0

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """The outline's bounding box (scene pixels, unclipped), or ``None``."""
        if self.quad is None:
            return None
        x0, y0 = self.quad.min(axis=0)
        x1, y1 = self.quad.max(axis=0)
        return (float(x0), float(y0), float(x1), float(y1))


NO_EVIDENCE = Evidence(matches=0, inliers=0, spread=0.0, quad=None)


@dataclass(frozen=True, eq=False)
class ReferenceKeypoints:
    """A reference described at several resolutions.

    Attributes:
        levels: per resolution, keypoint positions ``(N, 2)`` in the first level's
            working pixels and descriptors ``(N, 128)``.
        corners: ``(4, 2)`` reference box corners (TL, TR, BR, BL), first level's pixels.
    """

    levels: tuple[tuple[np.ndarray, np.ndarray], ...]
    corners: np.ndarray


@dataclass(frozen=True, eq=False)
class SceneFeatures:
    """A scene's keypoints (working pixels) and descriptors, and the working scale."""

    points: np.ndarray
    descriptors: np.ndarray | None
    scale: float
    size: tuple[int, int]  # (height, width) of the scene


@dataclass(frozen=True, eq=False)
class Correspondences:
    """Ratio-test matches of one reference in one scene: reference points ``src``
    (reference working pixels) and scene points ``dst`` (scene working pixels)."""

    src: np.ndarray
    dst: np.ndarray


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT: each descriptor L1-normalised, then its square root (float32)."""
    d = np.asarray(descriptors, np.float32)
    norm = np.abs(d).sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(np.maximum(d, 0.0) / norm).astype(np.float32)


class GeometricVerifier:
    """Local-feature evidence for candidate boxes, and proposals of its own.

    Args:
        params: its settings.
    """

    def __init__(self, params: GeometricParams | None = None) -> None:
        self.params = params or GeometricParams()
        p = self.params
        self._sift = [
            SiftMatcher(
                SiftParams(
                    ratio=p.ratio,
                    ransac_reproj=p.ransac_reproj,
                    ransac_iters=p.ransac_iters,
                    ransac_method=p.ransac_method,
                    min_inliers=p.min_inliers,
                    max_anisotropy=p.max_anisotropy,
                    min_side=p.min_side,
                    reference_side=side,
                    scene_side=p.scene_side,
                    reference_features=p.reference_features,
                    scene_features=p.scene_features,
                    masks=False,
                )
            )
            for side in p.reference_sides
        ]

    # -- features ----------------------------------------------------------------------

    def encode_reference(self, reference: Reference) -> ReferenceKeypoints:
        """Keypoints and descriptors of the product inside the reference box, at every
        resolution of ``reference_sides``."""
        levels = []
        corners = None
        for sift in self._sift:
            feats = sift.encode_reference(reference)
            if corners is None:
                corners = feats.corners.astype(np.float64)
            width = float(np.linalg.norm(feats.corners[1] - feats.corners[0]))
            to_first = float(np.linalg.norm(corners[1] - corners[0])) / max(width, 1e-9)
            descriptors = feats.descriptors
            if self.params.rootsift and len(descriptors):
                descriptors = root_sift(descriptors)
            levels.append((feats.points.astype(np.float64) * to_first, descriptors))
        assert corners is not None
        return ReferenceKeypoints(levels=tuple(levels), corners=corners)

    def prepare_scene(self, image: np.ndarray) -> SceneFeatures:
        """Keypoints and descriptors of a whole RGB scene."""
        prepared = self._sift[0].prepare_scene(image)
        descriptors = prepared.descriptors
        if self.params.rootsift and descriptors is not None:
            descriptors = root_sift(descriptors)
        return SceneFeatures(prepared.points, descriptors, prepared.scale, prepared.size)

    def correspondences(self, feats: ReferenceKeypoints, scene: SceneFeatures) -> Correspondences:
        """The ratio-test matches of a reference in a scene, over all its resolutions (a
        scene keypoint keeps its match at the finest resolution that has one)."""
        src, dst = [], []
        taken = np.zeros(0 if scene.descriptors is None else len(scene.descriptors), bool)
        for points, descriptors in feats.levels:
            if scene.descriptors is None or len(descriptors) < 2:
                continue
            ref_idx, scene_idx = ratio_matches(
                descriptors, scene.descriptors, ratio=self.params.ratio
            )
            fresh = ~taken[scene_idx]
            taken[scene_idx] = True
            src.append(points[ref_idx[fresh]])
            dst.append(scene.points[scene_idx[fresh]])
        if not src:
            empty = np.zeros((0, 2), np.float32)
            return Correspondences(empty, empty)
        return Correspondences(
            np.concatenate(src).astype(np.float32), np.concatenate(dst).astype(np.float32)
        )

    # -- evidence ----------------------------------------------------------------------

    def evidence(
        self,
        feats: ReferenceKeypoints,
        scene: SceneFeatures,
        matches: Correspondences,
        box: tuple[float, float, float, float],
    ) -> Evidence:
        """What the matches inside ``box`` (scene pixels, widened) say."""
        x0, y0, x1, y1 = (float(v) * scene.scale for v in box)
        pad_x = (x1 - x0) * self.params.region_context
        pad_y = (y1 - y0) * self.params.region_context
        dst = matches.dst
        inside = (
            (dst[:, 0] >= x0 - pad_x)
            & (dst[:, 0] <= x1 + pad_x)
            & (dst[:, 1] >= y0 - pad_y)
            & (dst[:, 1] <= y1 + pad_y)
        )
        count = int(inside.sum())
        fit = self._fit(feats, scene, matches.src[inside], dst[inside])  # needs min_inliers
        if fit is None or not fit.plausible:
            return Evidence(matches=count, inliers=0, spread=0.0, quad=None)
        return fit.evidence(count, scene.scale)

    def proposals(
        self,
        feats: ReferenceKeypoints,
        scene: SceneFeatures,
        matches: Correspondences,
        limit: int,
    ) -> list[Evidence]:
        """Up to ``limit`` instances found by fitting over the whole scene, removing each
        instance's matches before the next fit; most inliers first."""
        found: list[Evidence] = []
        active = np.ones(len(matches.src), bool)
        failures = 0
        while len(found) < limit and active.sum() >= self.params.min_inliers and failures < 3:
            src, dst = matches.src[active], matches.dst[active]
            fit = self._fit(feats, scene, src, dst)
            if fit is None:
                break
            active[np.flatnonzero(active)[fit.inlier_mask]] = False
            if not fit.plausible:
                failures += 1
                continue
            inside = points_in_quad(fit.quad, matches.dst, _work_size(scene))
            count = int((inside & active).sum()) + len(fit.points)
            active &= ~inside
            found.append(fit.evidence(count, scene.scale))
        found.sort(key=lambda e: -e.inliers)
        return found

    def _fit(
        self,
        feats: ReferenceKeypoints,
        scene: SceneFeatures,
        src: np.ndarray,
        dst: np.ndarray,
    ) -> _Fit | None:
        """A RANSAC homography of ``src -> dst`` with at least ``min_inliers`` inliers,
        plausible or not, or ``None``."""
        p = self.params
        if len(src) < max(4, p.min_inliers):
            return None
        fit = fit_homography(src.astype(np.float32), dst.astype(np.float32), self._sift[0].params)
        if fit is None or fit[1].sum() < p.min_inliers:
            return None
        homography, inlier_mask = fit
        quad = project(homography, feats.corners)
        plausible = plausible_quad(
            quad,
            reference_size=quad_size(feats.corners),
            scene_size=_work_size(scene),
            max_anisotropy=p.max_anisotropy,
            min_side=p.min_side,
        )
        return _Fit(quad, dst[inlier_mask], inlier_mask, plausible)


class _Fit(NamedTuple):
    """A homography fit: the projected outline and the inliers (scene working pixels)."""

    quad: np.ndarray
    points: np.ndarray
    inlier_mask: np.ndarray
    plausible: bool

    def evidence(self, matches: int, scale: float) -> Evidence:
        return Evidence(
            matches=matches,
            inliers=len(self.points),
            spread=_spread(self.points, self.quad),
            quad=self.quad / scale,
        )


def _work_size(scene: SceneFeatures) -> tuple[int, int]:
    """``(height, width)`` of the scene at the working resolution."""
    return (max(1, round(scene.size[0] * scene.scale)), max(1, round(scene.size[1] * scene.scale)))


def _spread(points: np.ndarray, quad: np.ndarray) -> float:
    """Area of the points' convex hull over the quadrilateral's area, in ``[0, 1]``."""
    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(points.astype(np.float32))
    area = abs(cv2.contourArea(quad.astype(np.float32)))
    if area <= 0:
        return 0.0
    return float(min(1.0, abs(cv2.contourArea(hull)) / area))
