"""The SIFT baseline: local features, Lowe's ratio test and RANSAC homographies.

The classical way to find a planar product in a photo, kept as the yardstick the Siamese
matchers are measured against (``matcher.load("baseline_sift")``):

1. SIFT keypoints of the reference (inside its box, on the product's silhouette when the
   photo has a plain background) and of the whole scene, in grey levels.
2. Every scene descriptor is matched to its two nearest reference descriptors and kept
   when the nearer is clearly nearer (``distance < ratio * second distance``). Matching
   scene-to-reference, rather than the other way, keeps the matches of every copy of the
   product, so several instances survive the ratio test.
3. RANSAC fits a homography reference -> scene. The reference box's corners, projected,
   must form a plausible view of a product: a convex quadrilateral with the reference's
   orientation (no mirror), opposite sides and aspect ratio within ``max_anisotropy`` of
   each other, a side of at least ``min_side`` pixels, and at least a quarter of its
   bounding box inside the scene. A plausible view becomes an instance: its box is the
   bounding box of the projected corners (clipped to the scene), its polygon those
   corners, its mask the reference silhouette warped into the scene.
4. The instance's inliers and every match inside its quadrilateral are removed and RANSAC
   runs again on the rest, for the next instance, until ``max_instances`` are found or
   too few matches remain (an implausible fit only removes its inliers, a few times).

**Score.** With ``n`` RANSAC inliers, ``score = 1 - exp(-(n - 4) / inlier_scale)``
(``0`` for ``n <= 4``, the four points any homography fits exactly). With the default
``inlier_scale = 8``: 8 inliers score 0.39, 10 score 0.53, 15 score 0.75, 20 score
0.86 and 30 score 0.96, so the default threshold 0.5 asks for about 10 inliers, the usual
rule of thumb for a trustworthy homography. Fits with fewer than ``min_inliers`` are not
considered at all.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from matcher.baselines.base import BaselineMatcher
from matcher.baselines.homography import (
    check_ransac_method,
    fit_homography,
    plausible_quad,
    points_in_quad,
    project,
    quad_size,
)
from matcher.checks import check_range
from matcher.errors import ConfigError
from matcher.foreground import foreground_mask
from matcher.images import box_crop
from matcher.structures import Instance, Reference

logger = logging.getLogger(__name__)

_MIN_IMAGE_SIDE = 8  # pixels; smaller images have no SIFT keypoints worth the name


@dataclass(frozen=True)
class SiftParams:
    """Settings of the SIFT baseline (``key=value`` overrides name these fields).

    Attributes:
        score_threshold: default minimum score of ``match``.
        max_instances: default cap on instances.
        ratio: Lowe's ratio test threshold.
        ransac_reproj: RANSAC inlier distance, scene pixels (at the working resolution).
        ransac_iters: RANSAC iterations per fit.
        ransac_method: the robust estimator
            (:data:`matcher.baselines.homography.RANSAC_METHODS`).
        min_inliers: fits with fewer inliers end the search.
        inlier_scale: inliers per e-fold of the score (see the module docstring).
        max_anisotropy: largest ratio of opposite sides, and of the projected aspect ratio
            to the reference's.
        min_side: shortest side of a projected box accepted, scene pixels.
        max_rejections: implausible fits tolerated per reference and scene.
        reference_side: reference crops are resized so their longer side lies within
            ``[reference_side / 4, reference_side]``.
        scene_side: scenes with a longer side are downscaled to it for features.
        reference_features / scene_features: most keypoints kept (0: all).
        masks: give each instance a mask (the reference silhouette warped into the scene).
    """

    score_threshold: float = 0.5
    max_instances: int = 5
    ratio: float = 0.75
    ransac_reproj: float = 5.0
    ransac_iters: int = 2000
    ransac_method: str = "ransac"
    min_inliers: int = 8
    inlier_scale: float = 8.0
    max_anisotropy: float = 3.0
    min_side: float = 8.0
    max_rejections: int = 3
    reference_side: int = 400
    scene_side: int = 1600
    reference_features: int = 2000
    scene_features: int = 6000
    masks: bool = True

    def __post_init__(self) -> None:
        check_range("score_threshold", self.score_threshold, 0.0, 1.0)
        check_range("max_instances", self.max_instances, 1, 100)
        check_range("ratio", self.ratio, 0.05, 1.0)
        check_range("ransac_reproj", self.ransac_reproj, 0.1, 100.0)
        check_range("ransac_iters", self.ransac_iters, 10, 1_000_000)
        check_ransac_method(self.ransac_method)
        check_range("min_inliers", self.min_inliers, 4, 10_000)
        check_range("inlier_scale", self.inlier_scale, 0.1, 10_000.0)
        check_range("max_anisotropy", self.max_anisotropy, 1.0, 100.0)
        check_range("min_side", self.min_side, 1.0, 10_000.0)
        check_range("max_rejections", self.max_rejections, 0, 1000)
        check_range("reference_side", self.reference_side, 32, 4096)
        check_range("scene_side", self.scene_side, 64, 16384)
        check_range("reference_features", self.reference_features, 0, 1_000_000)
        check_range("scene_features", self.scene_features, 0, 1_000_000)
        if not isinstance(self.masks, bool):
            raise ConfigError(f"parameter masks must be a bool, got {self.masks!r}")


@dataclass(frozen=True, eq=False)
class SiftFeatures:
    """A reference prepared for the SIFT baseline.

    Attributes:
        points: ``(N, 2)`` float32 keypoint positions, reference working pixels.
        descriptors: ``(N, 128)`` float32 SIFT descriptors.
        corners: ``(4, 2)`` float32 reference box corners (top-left, top-right,
            bottom-right, bottom-left), reference working pixels.
        silhouette: ``(h, w)`` uint8, 1 on the product, in reference working pixels
            (``h, w`` cover the box crop).
        recipe: name of the matcher that made it (as in ``ReferenceFeatures``).
        reference_id: the reference's id.
    """

    points: np.ndarray
    descriptors: np.ndarray
    corners: np.ndarray
    silhouette: np.ndarray
    recipe: str
    reference_id: str | None = None


@dataclass(frozen=True, eq=False)
class _Scene:
    """A scene's SIFT features at the working resolution (``scale`` x original pixels)."""

    points: np.ndarray
    descriptors: np.ndarray | None
    scale: float
    size: tuple[int, int]  # (height, width) of the original scene


class SiftMatcher(BaselineMatcher):
    """SIFT + ratio test + RANSAC homography matcher (see the module docstring).

    Args:
        params: its settings.
    """

    name = "baseline_sift"
    features_type = SiftFeatures

    def __init__(self, params: SiftParams | None = None) -> None:
        super().__init__(params or SiftParams())

    def encode_reference(self, reference: Reference) -> SiftFeatures:
        """Keypoints and descriptors of the product inside the reference box."""
        p: SiftParams = self.params
        crop, (cx, cy) = box_crop(reference.image, reference.box)
        silhouette = foreground_mask(reference.image, reference.box)
        long_side = max(crop.shape[:2])
        scale = min(p.reference_side / long_side, 1.0)
        scale = max(scale, p.reference_side / 4 / long_side)
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            grey = cv2.resize(grey, size, interpolation=interp)
            silhouette = cv2.resize(
                silhouette.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
            ).astype(bool)
        sx = grey.shape[1] / crop.shape[1]
        sy = grey.shape[0] / crop.shape[0]
        x0, y0, x1, y1 = reference.box
        corners = np.array(
            [[x0 - cx, y0 - cy], [x1 - cx, y0 - cy], [x1 - cx, y1 - cy], [x0 - cx, y1 - cy]],
            np.float32,
        ) * np.array([sx, sy], np.float32)
        points, descriptors = _sift(grey, p.reference_features, silhouette.astype(np.uint8))
        return SiftFeatures(
            points=points,
            descriptors=descriptors if descriptors is not None else np.zeros((0, 128), np.float32),
            corners=corners,
            silhouette=silhouette.astype(np.uint8),
            recipe=self.name,
            reference_id=reference.id,
        )

    def prepare_scene(self, image: np.ndarray) -> _Scene:
        """SIFT keypoints (working pixels) and descriptors of a whole RGB scene, and the
        working scale (for stages that reuse this baseline's features)."""
        return self._prepare_scene(image)

    def _prepare_scene(self, image: np.ndarray) -> _Scene:
        p: SiftParams = self.params
        height, width = image.shape[:2]
        scale = min(1.0, p.scene_side / max(height, width))
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        points, descriptors = _sift(grey, p.scene_features, None)
        return _Scene(points, descriptors, scale, (height, width))

    def _match_features(
        self, feats: SiftFeatures, prepared: _Scene, max_instances: int, threshold: float
    ) -> tuple[Instance, ...]:
        p: SiftParams = self.params
        scene = prepared
        if scene.descriptors is None or len(feats.descriptors) < 2:
            return ()
        src, dst = ratio_matches(feats.descriptors, scene.descriptors, ratio=p.ratio)
        src, dst = feats.points[src], scene.points[dst]
        work_size = (
            max(1, round(scene.size[0] * scene.scale)),
            max(1, round(scene.size[1] * scene.scale)),
        )
        active = np.ones(len(src), bool)
        instances: list[Instance] = []
        rejections = 0
        while len(instances) < max_instances and active.sum() >= p.min_inliers:
            fit = fit_homography(src[active], dst[active], p)
            if fit is None:
                break
            homography, inliers = fit
            if inliers.sum() < p.min_inliers:
                break
            active_idx = np.flatnonzero(active)
            active[active_idx[inliers]] = False
            quad = project(homography, feats.corners)
            if not plausible_quad(
                quad,
                reference_size=quad_size(feats.corners),
                scene_size=work_size,
                max_anisotropy=p.max_anisotropy,
                min_side=p.min_side,
            ):
                rejections += 1
                if rejections > p.max_rejections:
                    break
                continue
            active &= ~points_in_quad(quad, dst, work_size)
            score = inlier_score(int(inliers.sum()), scale=p.inlier_scale)
            if score < threshold:
                continue
            inst = self._instance(homography, quad, score, feats, scene)
            if inst is not None:
                instances.append(inst)
        instances.sort(key=lambda inst: -inst.score)
        return tuple(instances)

    def _instance(
        self,
        homography: np.ndarray,
        quad: np.ndarray,
        score: float,
        feats: SiftFeatures,
        scene: _Scene,
    ) -> Instance | None:
        height, width = scene.size
        to_scene = np.diag([1.0 / scene.scale, 1.0 / scene.scale, 1.0]) @ homography
        corners = quad / scene.scale
        x0 = float(np.clip(corners[:, 0].min(), 0, width))
        x1 = float(np.clip(corners[:, 0].max(), 0, width))
        y0 = float(np.clip(corners[:, 1].min(), 0, height))
        y1 = float(np.clip(corners[:, 1].max(), 0, height))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        mask = None
        if self.params.masks:
            mask = (
                cv2.warpPerspective(
                    feats.silhouette, to_scene, (width, height), flags=cv2.INTER_NEAREST
                )
                > 0
            )
        return Instance(
            box=(x0, y0, x1, y1),
            score=float(score),
            mask=mask,
            polygon=tuple((float(x), float(y)) for x, y in corners),
        )


# -- pure helpers -----------------------------------------------------------------------


def _sift(
    grey: np.ndarray, max_features: int, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """SIFT keypoint positions ``(N, 2)`` float32 and descriptors ``(N, 128)`` (or None)."""
    if min(grey.shape[:2]) < _MIN_IMAGE_SIDE:
        return np.zeros((0, 2), np.float32), None
    sift = cv2.SIFT_create(nfeatures=max_features)
    keypoints, descriptors = sift.detectAndCompute(grey, mask)
    if descriptors is None or not keypoints:
        return np.zeros((0, 2), np.float32), None
    points = np.array([kp.pt for kp in keypoints], np.float32).reshape(-1, 2)
    return points, descriptors.astype(np.float32)


def ratio_matches(
    reference: np.ndarray, scene: np.ndarray, *, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scene-to-reference nearest neighbours that pass Lowe's ratio test.

    Args:
        reference: ``(R, D)`` float32 reference descriptors, ``R >= 2``.
        scene: ``(S, D)`` float32 scene descriptors.
        ratio: a match is kept when its distance is below ``ratio`` times the distance to
            the second-nearest reference descriptor.

    Returns:
        ``(reference_index, scene_index)``, two ``(M,)`` int arrays.
    """
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(scene, reference, k=2)
    pairs = [
        (m[0].trainIdx, m[0].queryIdx)
        for m in knn
        if len(m) == 2 and m[0].distance < ratio * m[1].distance
    ]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    arr = np.array(pairs, np.int64)
    return arr[:, 0], arr[:, 1]


def inlier_score(inliers: int, *, scale: float) -> float:
    """``1 - exp(-(inliers - 4) / scale)``, 0 for four inliers or fewer."""
    return float(1.0 - math.exp(-max(inliers - 4, 0) / scale))
